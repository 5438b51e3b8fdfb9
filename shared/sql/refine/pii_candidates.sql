-- Refine step: distinct raw PII values of the period never standardised by the current rules (refined.pii_values
-- is the cache), and every cached value standardised by other rules (an upgrade): Python standardises them
-- (shared/refine/pii.py), appends them with the rules' version, then pii_stale_delete.sql drops the old rows.
-- `restandardised`: the value was cached under other rules (then the traits of every period are made again).
WITH users AS (
  SELECT email, phone, gender, address,
    COALESCE(name, NULLIF(TRIM(CONCAT(IFNULL(last_name, ''), ' ', IFNULL(first_name, ''))), '')) AS full_name
  FROM raw.`user`
  WHERE event_time >= @period_start AND event_time < @period_end
),
candidates AS (
  SELECT 'email' AS kind, email AS raw_value FROM users WHERE email IS NOT NULL
  UNION DISTINCT SELECT 'phone', phone FROM users WHERE phone IS NOT NULL
  UNION DISTINCT SELECT 'name', full_name FROM users WHERE full_name IS NOT NULL
  UNION DISTINCT SELECT 'gender', gender FROM users WHERE gender IS NOT NULL
  UNION DISTINCT SELECT 'address', address FROM users WHERE address IS NOT NULL
  UNION DISTINCT
  SELECT 'geo_region', CONCAT(IFNULL(country, ''), '|', region)
  FROM refined.events
  WHERE event_time >= @period_start AND event_time < @period_end AND region IS NOT NULL
)
SELECT c.kind, c.raw_value, LOGICAL_OR(c.restandardised) AS restandardised
FROM (
  SELECT kind, raw_value, FALSE AS restandardised FROM candidates
  UNION ALL
  SELECT kind, raw_value, TRUE FROM refined.pii_values WHERE IFNULL(rules_version, '') <> @pii_rules_version
) AS c
LEFT JOIN refined.pii_values AS v
  ON v.kind = c.kind AND v.raw_value = c.raw_value AND v.rules_version = @pii_rules_version
WHERE v.raw_value IS NULL
GROUP BY c.kind, c.raw_value
