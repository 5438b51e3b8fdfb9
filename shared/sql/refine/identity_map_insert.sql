-- Identity step 12: the run's assignment becomes the identity map.
INSERT INTO refined.identity_map (site_id, node, node_type, customer_id, first_seen, updated_at)
SELECT site_id, node, node_type, customer_id, first_seen, CURRENT_TIMESTAMP()
FROM refined.work_assign
