-- The run's work tables are dropped once its results are written.
DROP TABLE IF EXISTS refined.work_graph_edges;
DROP TABLE IF EXISTS refined.work_labels;
DROP TABLE IF EXISTS refined.work_labels_next;
DROP TABLE IF EXISTS refined.work_strong_groups;
DROP TABLE IF EXISTS refined.work_conflicts;
DROP TABLE IF EXISTS refined.work_capped;
DROP TABLE IF EXISTS refined.work_session_boundary;
DROP TABLE IF EXISTS refined.work_erased_seen;
DROP TABLE IF EXISTS refined.work_edges;
DROP TABLE IF EXISTS refined.work_assign
