-- Identity step 8: every kept link of an id the per-customer cap cut is dropped, with the reason.
UPDATE refined.work_edges
SET drop_reason = 'customer_cap',
  detail = CONCAT('its customer already holds ', CAST(@max_ids_per_customer AS STRING), ' ids of its type')
WHERE drop_reason IS NULL
  AND (src IN (SELECT node FROM refined.work_capped) OR dst IN (SELECT node FROM refined.work_capped))
