-- Refine step: the period's sessions are replaced (idempotent re-runs), and so are the sessions that may go on
-- into the period (sessions_boundary.sql: the same condition).
DELETE FROM refined.sessions
WHERE (started_at >= @period_start AND started_at < @period_end)
  OR (started_at >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND started_at < @period_start
      AND ended_at >= TIMESTAMP_SUB(@period_start, INTERVAL 30 MINUTE))
