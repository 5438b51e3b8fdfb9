-- The run's work tables are dropped once its results are written, and at the start of the next run with those a
-- crashed run left (on BigQuery they also expire a day after they were made). A crashed erasure's table of the
-- person's ids in clear goes too (no erasure runs alongside a refine run: shared/refine/writers.py).
DROP TABLE IF EXISTS refined.work_graph_edges;
DROP TABLE IF EXISTS refined.work_labels;
DROP TABLE IF EXISTS refined.work_labels_next;
DROP TABLE IF EXISTS refined.work_strong_groups;
DROP TABLE IF EXISTS refined.work_conflicts;
DROP TABLE IF EXISTS refined.work_capped;
DROP TABLE IF EXISTS refined.work_session_boundary;
DROP TABLE IF EXISTS refined.work_erased_seen;
DROP TABLE IF EXISTS refined.work_edges;
DROP TABLE IF EXISTS refined.work_assign;
DROP TABLE IF EXISTS refined.work_erase_nodes
