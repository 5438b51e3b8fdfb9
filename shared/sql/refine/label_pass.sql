-- Connected components, one pass (run a bounded number of times until label_changes.sql counts 0):
-- min-label propagation from the neighbours, then pointer jumping (a node takes its label's label), which
-- cuts the passes needed from the graph's diameter to about its logarithm. Labels only ever decrease and
-- stay inside the component, so the fixed point is the component's smallest node.
-- Passes alternate between work_labels and work_labels_next ({source} -> {target}), so no pass copies labels.
CREATE OR REPLACE TABLE {target}
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
WITH hop AS (
  SELECT e.src AS node, MIN(l.label) AS label
  FROM refined.work_graph_edges AS e
  JOIN {source} AS l ON l.node = e.dst
  GROUP BY e.src
),
stepped AS (
  SELECT l.node, l.label AS old_label, IF(h.label < l.label, h.label, l.label) AS label
  FROM {source} AS l
  LEFT JOIN hop AS h ON h.node = l.node
)
SELECT s.node, IF(j.label < s.label, j.label, s.label) AS label,
  IF(j.label < s.label, j.label, s.label) <> s.old_label AS changed
FROM stepped AS s
LEFT JOIN stepped AS j ON j.node = s.label
