-- Identity step 4: the edges no guard dropped, both directions, for label propagation.
CREATE OR REPLACE TABLE refined.work_graph_edges
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
SELECT src, dst FROM refined.work_edges WHERE drop_reason IS NULL
UNION DISTINCT
SELECT dst, src FROM refined.work_edges WHERE drop_reason IS NULL
