-- A raw table as later stages see it: redeliveries and client retries removed, the first row received per
-- event id wins. Applied to every raw table: the name in braces below is replaced by each table's.
-- The window is the last two years of event time: the filter sits inside the view, before the QUALIFY,
-- so that BigQuery's required partition filter on raw tables is met (a filter outside cannot pass a
-- window partitioned by event_id). Stages that need older history read the raw table with their period.
CREATE OR REPLACE VIEW raw.{table}_unique AS
SELECT * FROM raw.`{table}`
WHERE event_time >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 731 DAY)
QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY received_at, event_time) = 1
