-- Identity step 8: customer ids that no component keeps any more, because their identifiers joined an older
-- customer, are recorded as merged into the id most of their identifiers now have.
INSERT INTO refined.customer_merges (site_id, merged_id, surviving_id, run_id, merged_at)
WITH moved AS (
  SELECT m.site_id, m.customer_id AS merged_id, a.customer_id AS surviving_id, COUNT(*) AS nodes
  FROM refined.identity_map AS m
  JOIN refined.work_assign AS a ON a.node = m.node
  LEFT JOIN (SELECT DISTINCT customer_id FROM refined.work_assign) AS still ON still.customer_id = m.customer_id
  WHERE still.customer_id IS NULL AND a.customer_id <> m.customer_id
  GROUP BY m.site_id, m.customer_id, a.customer_id
)
SELECT site_id, merged_id, surviving_id, @run_id, CURRENT_TIMESTAMP()
FROM moved
WHERE TRUE  -- BigQuery wants QUALIFY with a WHERE, GROUP BY or HAVING
QUALIFY ROW_NUMBER() OVER (PARTITION BY site_id, merged_id ORDER BY nodes DESC, surviving_id) = 1
