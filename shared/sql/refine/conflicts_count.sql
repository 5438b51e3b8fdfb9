-- Identity: how many components conflict.
SELECT COUNT(*) AS conflicts FROM refined.work_conflicts
