-- Erasure step 1: the person found by one identifier (the erase_node parameter) is every identifier of its customer; each is
-- tombstoned in refined.erasures so that later events of these ids are never re-profiled (events_insert,
-- traits_insert skip them). Re-running a request adds nothing.
INSERT INTO refined.erasures (request_id, site_id, node, customer_id, requested_at, requested_by, rows_erased)
WITH person AS (
  SELECT m.node, m.customer_id
  FROM refined.identity_map AS m
  WHERE m.customer_id IN (SELECT customer_id FROM refined.identity_map WHERE node = @erase_node)
  UNION DISTINCT
  SELECT @erase_node, CAST(NULL AS STRING)
  FROM (SELECT 1 AS one)
  WHERE NOT EXISTS (SELECT 1 FROM refined.identity_map WHERE node = @erase_node)
)
SELECT @request_id, @site_id, p.node, p.customer_id, CURRENT_TIMESTAMP(), @requested_by, CAST(NULL AS INT64)
FROM person AS p
LEFT JOIN refined.erasures AS x ON x.request_id = @request_id AND x.node = p.node
WHERE x.node IS NULL
