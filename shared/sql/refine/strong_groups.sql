-- Identity step 2: each user / CRM id's strong group (ids joined by alias or a shared CRM record).
CREATE OR REPLACE TABLE refined.work_strong_groups
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
SELECT node, label AS grp
FROM refined.work_labels
