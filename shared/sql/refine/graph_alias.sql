-- Identity step 1a: the alias graph (user ids joined by alias calls), both directions. Label propagation
-- resolves it into refined.work_labels: the alias groups that graph_strong counts a CRM id's carriers in.
CREATE OR REPLACE TABLE refined.work_graph_edges
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
WITH aliases AS (
  SELECT e.src, e.dst
  FROM refined.identity_edges AS e
  WHERE e.blocked IS NULL AND e.kind = 'alias' AND SUBSTR(e.dst, LENGTH(e.site_id) + 2, 1) = 'u'
)
SELECT src, dst FROM aliases
UNION DISTINCT
SELECT dst, src FROM aliases
