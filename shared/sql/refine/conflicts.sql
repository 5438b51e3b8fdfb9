-- Identity step 5: components that would join user ids of different strong groups through a chain of
-- devices / emails / phones (each of which saw one user id only). Two user ids never merge without an alias.
CREATE OR REPLACE TABLE refined.work_conflicts AS
SELECT l.label
FROM refined.work_labels AS l
LEFT JOIN refined.work_strong_groups AS g ON g.node = l.node
WHERE REGEXP_CONTAINS(l.node, r'\|[uc]:')
GROUP BY l.label
HAVING COUNT(DISTINCT COALESCE(g.grp, l.node)) > 1
