-- Identity step 12: the run's assignment becomes the identity map; updated_at moves only for rows that changed
-- (so that a re-run changes nothing, and later stages can sync what changed since their last look).
INSERT INTO refined.identity_map (site_id, node, node_type, customer_id, first_seen, updated_at)
SELECT site_id, node, node_type, customer_id, first_seen, COALESCE(unchanged_since, CURRENT_TIMESTAMP())
FROM refined.work_assign
