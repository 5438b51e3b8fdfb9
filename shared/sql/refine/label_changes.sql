-- Connected components: how many labels the last pass changed (0: converged).
SELECT COUNTIF(changed) AS changed, COUNT(*) AS nodes
FROM refined.work_labels_next
