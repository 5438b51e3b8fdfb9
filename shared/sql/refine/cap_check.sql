-- Identity step 7: the per-customer cap. A component (a customer to be) holding more than the
-- max_ids_per_customer parameter ids of one type keeps the earliest seen of them; the later ones are cut
-- (cap_drop.sql drops every kept link they have, so they stand alone). The per-id guard (too_many_links) stops
-- stars; this stops long chains of devices, e-mails and phones that each looked harmless.
CREATE OR REPLACE TABLE refined.work_capped
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
WITH typed AS (
  SELECT node, label, SUBSTR(node, STRPOS(node, '|') + 1, 1) AS node_type
  FROM refined.work_labels
),
over_cap AS (
  SELECT label, node_type, COUNT(*) AS ids
  FROM typed
  GROUP BY label, node_type
  HAVING COUNT(*) > @max_ids_per_customer
),
members AS (
  SELECT t.node, t.label, t.node_type, o.ids
  FROM typed AS t
  JOIN over_cap AS o ON o.label = t.label AND o.node_type = t.node_type
),
seen AS (
  SELECT node, MIN(first_seen) AS first_seen
  FROM (
    SELECT e.src AS node, e.first_seen FROM refined.work_edges AS e JOIN members AS m ON m.node = e.src
    UNION ALL
    SELECT e.dst, e.first_seen FROM refined.work_edges AS e JOIN members AS m ON m.node = e.dst
  )
  GROUP BY node
)
SELECT m.node, m.node_type, m.ids
FROM members AS m
LEFT JOIN seen AS s ON s.node = m.node
WHERE TRUE  -- BigQuery wants QUALIFY with a WHERE, GROUP BY or HAVING
QUALIFY ROW_NUMBER() OVER (PARTITION BY m.label, m.node_type ORDER BY s.first_seen, m.node) > @max_ids_per_customer
