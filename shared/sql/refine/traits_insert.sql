-- Refine step: each unique user-table event of the period (identify, sign-up, CRM/POS record) with its PII
-- standardised (joined from refined.pii_values), its identity node, source priority and consent flags.
INSERT INTO refined.traits (
  event_id, site_id, node, event_time, source_priority, user_id, crm_id, email, phone, name, gender,
  birth_year, address_region, consent_email, consent_sms, consent_push, push_token
)
WITH users AS (
  SELECT u.*,
    COALESCE(u.name, NULLIF(TRIM(CONCAT(IFNULL(u.last_name, ''), ' ', IFNULL(u.first_name, ''))), '')) AS full_name,
    IF(u.user_id IS NULL OR REGEXP_CONTAINS(LOWER(TRIM(u.user_id)), @junk_pattern), NULL, TRIM(u.user_id)) AS user_ok,
    IF(u.anonymous_id IS NULL OR REGEXP_CONTAINS(LOWER(TRIM(u.anonymous_id)), @junk_pattern), NULL, TRIM(u.anonymous_id)) AS anon_ok,
    IF(u.crm_id IS NULL OR REGEXP_CONTAINS(LOWER(TRIM(u.crm_id)), @junk_pattern), NULL, TRIM(u.crm_id)) AS crm_ok,
    LOWER(COALESCE(JSON_VALUE(u.properties, '$.consent.email'), JSON_VALUE(u.properties, '$.email_opt_in'))) AS c_email,
    LOWER(COALESCE(JSON_VALUE(u.properties, '$.consent.sms'), JSON_VALUE(u.properties, '$.sms_opt_in'))) AS c_sms,
    LOWER(COALESCE(JSON_VALUE(u.properties, '$.consent.push'), JSON_VALUE(u.properties, '$.push_opt_in'))) AS c_push,
    COALESCE(JSON_VALUE(u.properties, '$.push_token'), JSON_VALUE(u.properties, '$.pushToken')) AS push_token_raw
  FROM raw.`user` AS u
  WHERE u.event_time >= @period_start AND u.event_time < @period_end
  QUALIFY ROW_NUMBER() OVER (PARTITION BY u.event_id ORDER BY u.received_at, u.event_time) = 1
),
-- A user id that is a CRM id is that CRM record's node (as in events_insert).
crm_keys AS (
  SELECT DISTINCT site_id, TRIM(crm_id) AS crm
  FROM raw.`user`
  WHERE event_time >= TIMESTAMP '2000-01-01' AND crm_id IS NOT NULL AND TRIM(crm_id) <> ''
)
SELECT
  u.event_id, u.site_id,
  CASE
    WHEN k.crm IS NOT NULL THEN CONCAT(u.site_id, '|c:', u.user_ok)
    WHEN u.user_ok IS NOT NULL THEN CONCAT(u.site_id, '|u:', u.user_ok)
    WHEN u.anon_ok IS NOT NULL THEN CONCAT(u.site_id, '|a:', u.anon_ok)
  END AS node,
  u.event_time,
  IF(u.crm_ok IS NOT NULL, 1, 2) AS source_priority,
  u.user_ok, u.crm_ok, em.value, ph.value, nm.value, gd.value,
  IF(u.birth_year BETWEEN 1900 AND EXTRACT(YEAR FROM @period_end), u.birth_year, NULL),
  ad.value,
  CASE WHEN u.c_email IN ('true', 'yes', 'y', '1') THEN TRUE WHEN u.c_email IN ('false', 'no', 'n', '0') THEN FALSE END,
  CASE WHEN u.c_sms IN ('true', 'yes', 'y', '1') THEN TRUE WHEN u.c_sms IN ('false', 'no', 'n', '0') THEN FALSE END,
  CASE WHEN u.c_push IN ('true', 'yes', 'y', '1') THEN TRUE WHEN u.c_push IN ('false', 'no', 'n', '0') THEN FALSE END,
  NULLIF(TRIM(u.push_token_raw), '')
FROM users AS u
LEFT JOIN refined.pii_values AS em ON em.kind = 'email' AND em.raw_value = u.email
  AND em.rules_version = @pii_rules_version
LEFT JOIN refined.pii_values AS ph ON ph.kind = 'phone' AND ph.raw_value = u.phone
  AND ph.rules_version = @pii_rules_version
LEFT JOIN refined.pii_values AS nm ON nm.kind = 'name' AND nm.raw_value = u.full_name
  AND nm.rules_version = @pii_rules_version
LEFT JOIN refined.pii_values AS gd ON gd.kind = 'gender' AND gd.raw_value = u.gender
  AND gd.rules_version = @pii_rules_version
LEFT JOIN refined.pii_values AS ad ON ad.kind = 'address' AND ad.raw_value = u.address
  AND ad.rules_version = @pii_rules_version
LEFT JOIN crm_keys AS k ON k.site_id = u.site_id AND k.crm = u.user_ok
LEFT JOIN refined.work_erased_seen AS xa ON xa.site_id = u.site_id AND xa.node = CONCAT(u.site_id, '|a:', u.anon_ok)
LEFT JOIN refined.work_erased_seen AS xu ON xu.site_id = u.site_id
  AND xu.node IN (CONCAT(u.site_id, '|u:', u.user_ok), CONCAT(u.site_id, '|c:', u.user_ok))
WHERE xa.node IS NULL AND xu.node IS NULL
