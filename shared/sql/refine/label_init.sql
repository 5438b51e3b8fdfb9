-- Connected components, start: every node of refined.work_graph_edges (both directions) takes the smallest
-- of itself and its neighbours as its label.
CREATE OR REPLACE TABLE refined.work_labels
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
SELECT src AS node, IF(MIN(dst) < src, MIN(dst), src) AS label
FROM refined.work_graph_edges
GROUP BY src
