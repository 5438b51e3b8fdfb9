-- Erasure: the person's identifiers in clear leave with the erasure's work table.
DROP TABLE IF EXISTS refined.work_erase_nodes
