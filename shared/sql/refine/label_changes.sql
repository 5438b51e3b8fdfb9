-- Connected components: how many labels the last pass changed in {labels} (0: converged).
SELECT COUNTIF(changed) AS changed, COUNT(*) AS nodes
FROM {labels}
