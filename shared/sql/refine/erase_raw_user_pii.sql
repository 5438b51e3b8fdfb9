-- Erasure step 3: raw user rows that carry the person's email, phone or CRM id under another device or id
-- (raw values are matched through their standardised form in refined.pii_values).
DELETE FROM raw.`user` AS r
WHERE r.event_time >= TIMESTAMP '2000-01-01'
  AND r.site_id = @site_id
  AND (
    r.email IN (SELECT v.raw_value FROM refined.pii_values AS v JOIN refined.work_erase_nodes AS x
                  ON x.node = CONCAT(@site_id, '|e:', v.value) WHERE v.kind = 'email')
    OR r.phone IN (SELECT v.raw_value FROM refined.pii_values AS v JOIN refined.work_erase_nodes AS x
                  ON x.node = CONCAT(@site_id, '|p:', v.value) WHERE v.kind = 'phone')
    OR CONCAT(r.site_id, '|c:', TRIM(r.crm_id)) IN (SELECT node FROM refined.work_erase_nodes)
  )
