-- Identity: how many ids the per-customer cap cuts.
SELECT COUNT(*) AS capped FROM refined.work_capped
