-- Identity step 5: components that would join user ids of different strong groups, or CRM ids of different
-- strong groups, through a chain of devices / emails / phones (each of which saw one of them only). Two user
-- ids never merge without an alias; a login and a CRM record may.
CREATE OR REPLACE TABLE refined.work_conflicts
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
WITH strong AS (
  SELECT l.label, COALESCE(g.grp, l.node) AS grp, SUBSTR(l.node, STRPOS(l.node, '|') + 1, 1) AS node_type
  FROM refined.work_labels AS l
  LEFT JOIN refined.work_strong_groups AS g ON g.node = l.node
  WHERE SUBSTR(l.node, STRPOS(l.node, '|') + 1, 1) IN ('u', 'c')
)
SELECT label
FROM strong
GROUP BY label
HAVING COUNT(DISTINCT IF(node_type = 'u', grp, NULL)) > 1 OR COUNT(DISTINCT IF(node_type = 'c', grp, NULL)) > 1
