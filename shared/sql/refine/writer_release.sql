-- One writer at a time: a writer's claim goes when it ends (or withdraws), and with it crashed writers' claims.
DELETE FROM refined.writers
WHERE holder_id = @holder_id OR claimed_at < TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @stale_after_minutes MINUTE)
