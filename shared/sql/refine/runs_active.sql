-- Run ledger: runs still running that started recently (another run must not overwrite their work tables).
SELECT run_id, started_at
FROM refined.runs
WHERE status = 'running' AND started_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 2 HOUR)
