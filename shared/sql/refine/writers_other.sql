-- One writer at a time: the other claims on the refined tables, newest first. A claim older than the staleness
-- bound is a crashed writer's and does not count (writer_release.sql deletes it).
SELECT holder_id, kind, claimed_at
FROM refined.writers
WHERE holder_id <> @holder_id AND claimed_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @stale_after_minutes MINUTE)
ORDER BY claimed_at DESC
