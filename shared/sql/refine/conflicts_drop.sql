-- Identity step 6: in conflicting components, links between two weak ids (device-email, device-phone seen
-- without a user id) are dropped; every weak id then hangs off at most one strong group (step 3), so the
-- next propagation cannot join two user ids.
UPDATE refined.work_edges
SET drop_reason = 'would_merge_user_ids', detail = 'chain of weak ids between user ids (or CRM records) of different customers'
WHERE drop_reason IS NULL
  AND src_type IN ('a', 'e', 'p') AND dst_type IN ('a', 'e', 'p')
  AND src IN (SELECT l.node FROM refined.work_labels AS l JOIN refined.work_conflicts AS c ON c.label = l.label)
