-- Identity step 9: the run's merged customer ids are marked merged, pointing at the survivor.
UPDATE refined.customers AS c
SET status = 'merged', merged_into = m.surviving_id, merged_at = m.merged_at
FROM refined.customer_merges AS m
WHERE m.run_id = @run_id AND m.site_id = c.site_id AND m.merged_id = c.customer_id
