-- Identity step 10: customer ids issued by this run.
INSERT INTO refined.customers (site_id, customer_id, first_seen, created_at, created_run_id, status, merged_into, merged_at)
SELECT site_id, customer_id, MIN(customer_first_seen), CURRENT_TIMESTAMP(), @run_id, 'active', CAST(NULL AS STRING), CAST(NULL AS TIMESTAMP)
FROM refined.work_assign
WHERE is_new
GROUP BY site_id, customer_id
