-- Erasure step 4: the person's raw emails and phones leave the standardisation cache.
DELETE FROM refined.pii_values AS v
WHERE (v.kind = 'email' AND CONCAT(@site_id, '|e:', v.value) IN (SELECT node FROM refined.work_erase_nodes))
   OR (v.kind = 'phone' AND CONCAT(@site_id, '|p:', v.value) IN (SELECT node FROM refined.work_erase_nodes))
