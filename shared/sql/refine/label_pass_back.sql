-- Connected components, one pass the other way round: work_labels_next -> work_labels, so that passes
-- alternate between the two tables and no pass copies labels (see label_pass.sql).
CREATE OR REPLACE TABLE refined.work_labels AS
WITH hop AS (
  SELECT e.src AS node, MIN(l.label) AS label
  FROM refined.work_graph_edges AS e
  JOIN refined.work_labels_next AS l ON l.node = e.dst
  GROUP BY e.src
),
stepped AS (
  SELECT l.node, l.label AS old_label, IF(h.label < l.label, h.label, l.label) AS label
  FROM refined.work_labels_next AS l
  LEFT JOIN hop AS h ON h.node = l.node
)
SELECT s.node, IF(j.label < s.label, j.label, s.label) AS label,
  IF(j.label < s.label, j.label, s.label) <> s.old_label AS changed
FROM stepped AS s
LEFT JOIN stepped AS j ON j.node = s.label
