-- Refine step: ids of the period's raw events that a deletion request tombstoned (refined.erasures keeps their
-- hashes only), in clear for this run's events_insert and traits_insert to leave out; dropped with the run's
-- work tables. Only distinct ids are hashed, and nothing at all while no one was ever erased. raw.user is read
-- from the users_from parameter: the period's start less a day, or all time when a run makes the traits of
-- every period again (only raw.user feeds traits: the other, larger tables are never scanned for all time).
CREATE OR REPLACE TABLE refined.work_erased_seen
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
WITH raw_ids AS (
  SELECT site_id, anonymous_id, user_id FROM raw.`user`
  WHERE event_time >= @users_from AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  UNION ALL
  SELECT site_id, anonymous_id, user_id FROM raw.page
  WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  UNION ALL
  SELECT site_id, anonymous_id, user_id FROM raw.land
  WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  UNION ALL
  SELECT site_id, anonymous_id, user_id FROM raw.conv
  WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  UNION ALL
  SELECT site_id, anonymous_id, user_id FROM raw.event
  WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
),
candidates AS (
  SELECT DISTINCT site_id, node
  FROM (
    SELECT site_id, CONCAT(site_id, '|a:', TRIM(anonymous_id)) AS node FROM raw_ids WHERE anonymous_id IS NOT NULL
    UNION ALL
    SELECT site_id, CONCAT(site_id, '|u:', TRIM(user_id)) FROM raw_ids WHERE user_id IS NOT NULL
    UNION ALL
    SELECT site_id, CONCAT(site_id, '|c:', TRIM(user_id)) FROM raw_ids WHERE user_id IS NOT NULL
  )
  WHERE EXISTS (SELECT 1 FROM refined.erasures)
)
SELECT c.site_id, c.node
FROM candidates AS c
JOIN refined.erasures AS x ON x.site_id = c.site_id AND x.node_hash = TO_HEX(SHA256(c.node))
GROUP BY c.site_id, c.node
