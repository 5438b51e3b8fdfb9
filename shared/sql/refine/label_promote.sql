-- Connected components: the pass's labels become the current ones.
CREATE OR REPLACE TABLE refined.work_labels
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
SELECT node, label
FROM refined.work_labels_next
