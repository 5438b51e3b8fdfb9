-- Refine step: devices whose last session before the period may go on into it (it ended less than 30 minutes
-- before the period's start), with that session's start: sessions_delete and sessions_insert redo it from
-- there, so that a session is never cut in two by the period's start. Looked back one day at most: a session
-- open for longer than that restarts at the period's start.
CREATE OR REPLACE TABLE refined.work_session_boundary
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
SELECT site_id, device_key, MIN(started_at) AS from_time
FROM refined.sessions
WHERE started_at >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND started_at < @period_start
  AND ended_at >= TIMESTAMP_SUB(@period_start, INTERVAL 30 MINUTE)
GROUP BY site_id, device_key
