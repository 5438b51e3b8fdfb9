-- Erasure step 1: the person found by one identifier (the erase_node parameter) is every identifier of its
-- customer, in a work table for the erasure's steps (dropped at its end: tombstones keep only hashes). A
-- repeat of a request also finds, by their hashes, the ids its first attempt tombstoned and still sees in the raw
-- tables (rows BigQuery's streaming buffer held back): the identity map no longer names them.
CREATE OR REPLACE TABLE refined.work_erase_nodes
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
WITH person AS (
  SELECT m.node, m.customer_id
  FROM refined.identity_map AS m
  WHERE m.customer_id IN (SELECT customer_id FROM refined.identity_map WHERE node = @erase_node)
  UNION ALL
  SELECT @erase_node, CAST(NULL AS STRING)
  FROM (SELECT 1 AS one)
  WHERE NOT EXISTS (SELECT 1 FROM refined.identity_map WHERE node = @erase_node)
),
tombstoned AS (
  SELECT node_hash FROM refined.erasures WHERE request_id = @request_id
),
raw_ids AS (
  SELECT site_id, anonymous_id, user_id FROM raw.`user` WHERE event_time >= TIMESTAMP '2000-01-01' AND site_id = @site_id
  UNION ALL
  SELECT site_id, anonymous_id, user_id FROM raw.page WHERE event_time >= TIMESTAMP '2000-01-01' AND site_id = @site_id
  UNION ALL
  SELECT site_id, anonymous_id, user_id FROM raw.land WHERE event_time >= TIMESTAMP '2000-01-01' AND site_id = @site_id
  UNION ALL
  SELECT site_id, anonymous_id, user_id FROM raw.conv WHERE event_time >= TIMESTAMP '2000-01-01' AND site_id = @site_id
  UNION ALL
  SELECT site_id, anonymous_id, user_id FROM raw.event WHERE event_time >= TIMESTAMP '2000-01-01' AND site_id = @site_id
),
candidates AS (
  SELECT DISTINCT node
  FROM (
    SELECT CONCAT(site_id, '|a:', TRIM(anonymous_id)) AS node FROM raw_ids WHERE anonymous_id IS NOT NULL
    UNION ALL
    SELECT CONCAT(site_id, '|u:', TRIM(user_id)) FROM raw_ids WHERE user_id IS NOT NULL
    UNION ALL
    SELECT CONCAT(site_id, '|c:', TRIM(user_id)) FROM raw_ids WHERE user_id IS NOT NULL
  )
  WHERE EXISTS (SELECT 1 FROM tombstoned)
),
seen_again AS (
  SELECT c.node, CAST(NULL AS STRING) AS customer_id
  FROM candidates AS c
  WHERE TO_HEX(SHA256(c.node)) IN (SELECT node_hash FROM tombstoned)
)
SELECT node, MAX(customer_id) AS customer_id
FROM (SELECT node, customer_id FROM person UNION ALL SELECT node, customer_id FROM seen_again)
GROUP BY node
