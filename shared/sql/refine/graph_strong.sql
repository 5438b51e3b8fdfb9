-- Identity step 1b: the strong graph (user ids and CRM ids), to find which user ids may be one customer.
-- Only explicit links join strong ids: alias calls, and a CRM id carried by the user ids of one alias group only
-- (refined.work_labels holds the alias groups, from graph_alias): a member who changed login carries their CRM
-- id under both. Both directions; label propagation (label_*.sql) resolves it into refined.work_labels.
CREATE OR REPLACE TABLE refined.work_graph_edges
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
WITH typed AS (
  SELECT e.*, SUBSTR(e.src, LENGTH(e.site_id) + 2, 1) AS src_type, SUBSTR(e.dst, LENGTH(e.site_id) + 2, 1) AS dst_type
  FROM refined.identity_edges AS e
  WHERE e.blocked IS NULL
),
crm_users AS (
  SELECT t.dst AS crm, COUNT(DISTINCT COALESCE(a.label, t.src)) AS users
  FROM typed AS t
  LEFT JOIN refined.work_labels AS a ON a.node = t.src
  WHERE t.kind = 'crm' AND t.src_type = 'u'
  GROUP BY t.dst
),
strong AS (
  SELECT t.src, t.dst FROM typed AS t WHERE t.kind = 'alias' AND t.dst_type = 'u'
  UNION ALL
  SELECT t.src, t.dst FROM typed AS t JOIN crm_users AS c ON c.crm = t.dst
  WHERE t.kind = 'crm' AND t.src_type = 'u' AND c.users = 1
)
SELECT src, dst FROM strong
UNION DISTINCT
SELECT dst, src FROM strong
