-- A raw table with redeliveries and client retries removed: the first row received per event id wins.
-- Applied to every raw table; {table} is the table's name. Later stages read these views.
CREATE OR REPLACE VIEW raw.{table}_unique AS
SELECT * FROM raw.`{table}`
QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY received_at, event_time) = 1
