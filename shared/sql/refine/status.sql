-- Freshness for operators and the CLI: the last run, the last success, and whether the profiles are stale
-- (older than the stale_after_hours parameter, or behind the last successful run, or the last run failed).
WITH last_run AS (
  SELECT run_id, status, started_at, finished_at, error
  FROM refined.runs
  WHERE TRUE  -- BigQuery wants QUALIFY with a WHERE, GROUP BY or HAVING
  QUALIFY ROW_NUMBER() OVER (ORDER BY started_at DESC) = 1
),
last_ok AS (
  SELECT MAX(period_end) AS period_end, MAX(finished_at) AS finished_at FROM refined.runs WHERE status = 'succeeded'
),
profiles AS (
  SELECT MAX(as_of) AS as_of, COUNT(*) AS profiles FROM refined.profiles
)
SELECT
  r.run_id AS last_run_id, r.status AS last_run_status, r.started_at AS last_run_started_at, r.error AS last_run_error,
  o.period_end AS last_success_period_end, o.finished_at AS last_success_finished_at,
  p.as_of AS profiles_as_of, p.profiles,
  (p.as_of IS NULL
    OR p.as_of < TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @stale_after_hours HOUR)
    OR IFNULL(r.status, '') = 'failed') AS stale
FROM profiles AS p
LEFT JOIN last_ok AS o ON TRUE
LEFT JOIN last_run AS r ON TRUE
