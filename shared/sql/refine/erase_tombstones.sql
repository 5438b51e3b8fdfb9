-- Erasure step 2: each identifier of the person is tombstoned in refined.erasures by its hash, so that later
-- events of it are never re-profiled (refine's erased_seen step) while the identifier itself is not kept.
-- Re-running a request adds nothing.
INSERT INTO refined.erasures (
  request_id, site_id, node_hash, customer_id, requested_at, requested_by, rows_erased, caller
)
SELECT
  @request_id, @site_id, h.node_hash, h.customer_id, CURRENT_TIMESTAMP(), @requested_by, CAST(NULL AS INT64),
  CAST(@caller AS STRING)
FROM (SELECT TO_HEX(SHA256(node)) AS node_hash, customer_id FROM refined.work_erase_nodes) AS h
LEFT JOIN refined.erasures AS x ON x.request_id = @request_id AND x.node_hash = h.node_hash
WHERE x.node_hash IS NULL
