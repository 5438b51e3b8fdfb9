-- Identity step 7: every identifier's customer id, stable across runs.
-- A component (label = its smallest node; a node without kept edges is its own component) keeps the id its
-- identifiers already had; when they had several (customers merged), the oldest customer (first seen) survives.
-- After a split, an id stays with the component holding most of its identifiers; the others get new ids.
-- An identifier whose customer and first sighting did not change keeps its identity map row's updated_at.
-- A new id is a hash of the component's smallest node (with the run id when that id was ever issued).
CREATE OR REPLACE TABLE refined.work_assign
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
WITH universe AS (
  SELECT site_id, node, MIN(first_seen) AS first_seen
  FROM (
    SELECT site_id, node, event_time AS first_seen FROM refined.events WHERE node IS NOT NULL
    UNION ALL
    SELECT site_id, src, first_seen FROM refined.work_edges WHERE IFNULL(drop_reason, '') <> 'junk_identifier'
    UNION ALL
    SELECT site_id, dst, first_seen FROM refined.work_edges WHERE IFNULL(drop_reason, '') <> 'junk_identifier'
  )
  GROUP BY site_id, node
),
comp AS (
  SELECT u.site_id, u.node, SUBSTR(u.node, LENGTH(u.site_id) + 2, 1) AS node_type, u.first_seen,
    COALESCE(l.label, u.node) AS label
  FROM universe AS u
  LEFT JOIN refined.work_labels AS l ON l.node = u.node
),
comp_first AS (
  SELECT label, MIN(first_seen) AS first_seen FROM comp GROUP BY label
),
prev AS (
  SELECT m.node, m.customer_id, c.first_seen AS customer_first_seen
  FROM refined.identity_map AS m
  JOIN refined.customers AS c ON c.site_id = m.site_id AND c.customer_id = m.customer_id
  WHERE c.status = 'active'
),
cand AS (
  SELECT comp.label, prev.customer_id, MIN(prev.customer_first_seen) AS customer_first_seen, COUNT(*) AS nodes
  FROM comp
  JOIN prev ON prev.node = comp.node
  GROUP BY comp.label, prev.customer_id
),
best AS (
  SELECT label, customer_id, nodes
  FROM cand
  WHERE TRUE  -- BigQuery wants QUALIFY with a WHERE, GROUP BY or HAVING
  QUALIFY ROW_NUMBER() OVER (PARTITION BY label ORDER BY customer_first_seen, customer_id) = 1
),
keeps AS (
  SELECT label, customer_id
  FROM best
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY nodes DESC, label) = 1
),
fresh AS (
  SELECT DISTINCT comp.label, CONCAT('c', SUBSTR(TO_HEX(MD5(comp.label)), 1, 24)) AS plain_id
  FROM comp
  LEFT JOIN keeps AS k ON k.label = comp.label
  WHERE k.label IS NULL
),
fresh_ids AS (
  SELECT f.label,
    IF(ex.customer_id IS NULL, f.plain_id, CONCAT('c', SUBSTR(TO_HEX(MD5(CONCAT(f.label, '|', @run_id))), 1, 24))) AS customer_id
  FROM fresh AS f
  LEFT JOIN refined.customers AS ex ON ex.customer_id = f.plain_id
)
SELECT comp.site_id, comp.node, comp.node_type, comp.label, comp.first_seen,
  COALESCE(k.customer_id, fi.customer_id) AS customer_id,
  k.customer_id IS NULL AS is_new,
  cf.first_seen AS customer_first_seen,
  -- the identity map's row is unchanged (same customer, same first seen): it keeps its updated_at
  IF(pm.customer_id = COALESCE(k.customer_id, fi.customer_id) AND pm.first_seen = comp.first_seen, pm.updated_at, NULL)
    AS unchanged_since
FROM comp
JOIN comp_first AS cf ON cf.label = comp.label
LEFT JOIN keeps AS k ON k.label = comp.label
LEFT JOIN fresh_ids AS fi ON fi.label = comp.label
LEFT JOIN refined.identity_map AS pm ON pm.node = comp.node
