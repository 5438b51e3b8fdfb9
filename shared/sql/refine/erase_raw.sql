-- Erasure step 2, for each raw table ({table}): rows of the tombstoned anonymous / user ids. In BigQuery, rows
-- still in the streaming buffer (the last ~30 minutes) cannot be deleted yet: the tombstone keeps them out of
-- profiles and re-running the request deletes them later.
DELETE FROM raw.`{table}` AS r
WHERE r.event_time >= TIMESTAMP '2000-01-01'
  AND r.site_id = @site_id
  AND (
    CONCAT(r.site_id, '|a:', TRIM(r.anonymous_id)) IN (SELECT node FROM refined.work_erase_nodes)
    OR CONCAT(r.site_id, '|u:', TRIM(r.user_id)) IN (SELECT node FROM refined.work_erase_nodes)
  )
