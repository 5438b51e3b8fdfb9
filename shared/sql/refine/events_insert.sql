-- Refine step: the period's unique raw events of the five raw tables, narrowed, with their identity node.
-- Dedupe (pitfall 9): the first row received per event id within its table, over the period widened by a day
-- each side so that retries straddling the boundary are seen together. The five tables are narrowed to
-- refined.events' columns once (raw_rows); only ids that occur more than once in their table go through the
-- window (a narrow GROUP BY finds them), the rest pass straight through.
-- Node: the user id's when there is a valid one, else the anonymous id's (junk ids are no node); device key:
-- the valid anonymous id, else the valid user id (sessions are per device).
-- Times are the skew-corrected event_time. Events of erased identifiers (refined.work_erased_seen, from the tombstones) are not re-profiled.
INSERT INTO refined.events (
  event_id, source_table, site_id, `call`, event_time, received_at, anonymous_id, user_id, node, device_key,
  device_type, os, browser, country, region, page_url, medium, source, campaign, click_id, keyword,
  event_type, event_name, product_name, order_id, revenue, currency
)
WITH raw_rows AS (
  -- every raw table's rows of the widened period, in refined.events' columns
  SELECT 'user' AS source_table, event_id, site_id, `call`, event_time, received_at, anonymous_id, user_id, device_type, os, browser, country, region, page_url,
    CAST(NULL AS STRING) AS medium, CAST(NULL AS STRING) AS source, CAST(NULL AS STRING) AS campaign, CAST(NULL AS STRING) AS click_id, CAST(NULL AS STRING) AS keyword, CAST(NULL AS STRING) AS event_type, CAST(NULL AS STRING) AS event_name, CAST(NULL AS STRING) AS product_name, CAST(NULL AS STRING) AS order_id, CAST(NULL AS FLOAT64) AS revenue, CAST(NULL AS STRING) AS currency
  FROM raw.`user` WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  UNION ALL
  SELECT 'page', event_id, site_id, `call`, event_time, received_at, anonymous_id, user_id, device_type, os, browser, country, region, page_url,
    NULL, NULL, NULL, NULL, NULL, NULL, name, NULL, NULL, NULL, NULL
  FROM raw.page WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  UNION ALL
  SELECT 'land', event_id, site_id, `call`, event_time, received_at, anonymous_id, user_id, device_type, os, browser, country, region, page_url,
    medium, source, campaign, click_id, search_keyword, NULL, NULL, NULL, NULL, NULL, NULL
  FROM raw.land WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  UNION ALL
  SELECT 'conv', event_id, site_id, `call`, event_time, received_at, anonymous_id, user_id, device_type, os, browser, country, region, page_url,
    NULL, NULL, NULL, NULL, NULL, conv_type, event_name, product_names, order_id, revenue, currency
  FROM raw.conv WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  UNION ALL
  SELECT 'event', event_id, site_id, `call`, event_time, received_at, anonymous_id, user_id, device_type, os, browser, country, region, page_url,
    NULL, NULL, NULL, NULL, search_keyword, event_type, event_name, product_name, NULL, price, NULL
  FROM raw.event WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
),
dup_ids AS (
  SELECT source_table, event_id FROM raw_rows GROUP BY source_table, event_id HAVING COUNT(*) > 1
),
unioned AS (
  SELECT r.* FROM raw_rows AS r
  LEFT JOIN dup_ids AS d ON d.source_table = r.source_table AND d.event_id = r.event_id
  WHERE d.event_id IS NULL
  UNION ALL
  SELECT r.* FROM raw_rows AS r
  JOIN dup_ids AS d ON d.source_table = r.source_table AND d.event_id = r.event_id
  WHERE TRUE  -- BigQuery wants QUALIFY with a WHERE, GROUP BY or HAVING
  QUALIFY ROW_NUMBER() OVER (PARTITION BY r.source_table, r.event_id ORDER BY r.received_at, r.event_time) = 1
),
-- A user id that is a CRM id (CRM / POS records sent with userId = the customer number) is that CRM record's
-- node, not a second user id of the person: the same value, every time, in every table.
crm_keys AS (
  SELECT DISTINCT site_id, TRIM(crm_id) AS crm
  FROM raw.`user`
  WHERE event_time >= TIMESTAMP '2000-01-01' AND crm_id IS NOT NULL AND TRIM(crm_id) <> ''
),
in_period AS (
  SELECT
    u.*,
    IF(u.anonymous_id IS NULL OR REGEXP_CONTAINS(LOWER(TRIM(u.anonymous_id)), @junk_pattern), NULL, TRIM(u.anonymous_id)) AS anon_ok,
    IF(u.user_id IS NULL OR REGEXP_CONTAINS(LOWER(TRIM(u.user_id)), @junk_pattern), NULL, TRIM(u.user_id)) AS user_ok
  FROM unioned AS u
  WHERE u.event_time >= @period_start AND u.event_time < @period_end
    -- Crawlers and monitoring browsers (collect's device_type 'bot') run the site's JavaScript too: their page
    -- views, landings and events stay in raw only. Identity and order records count whatever the user agent.
    AND NOT (u.source_table IN ('page', 'land', 'event') AND IFNULL(u.device_type, '') = 'bot')
)
SELECT
  p.event_id, p.source_table, p.site_id, p.`call`, p.event_time, p.received_at, p.anonymous_id, p.user_id,
  CASE
    WHEN k.crm IS NOT NULL THEN CONCAT(p.site_id, '|c:', p.user_ok)
    WHEN p.user_ok IS NOT NULL THEN CONCAT(p.site_id, '|u:', p.user_ok)
    WHEN p.anon_ok IS NOT NULL THEN CONCAT(p.site_id, '|a:', p.anon_ok)
  END AS node,
  COALESCE(p.anon_ok, p.user_ok) AS device_key,
  -- a bot's user agent on an identity or order record (a shop's backend) says nothing of the person's device
  IF(p.device_type = 'bot', NULL, p.device_type), IF(p.device_type = 'bot', NULL, p.os),
  IF(p.device_type = 'bot', NULL, p.browser), p.country, p.region, p.page_url, p.medium, p.source, p.campaign,
  p.click_id, p.keyword, p.event_type, p.event_name, p.product_name, p.order_id, p.revenue, p.currency
FROM in_period AS p
LEFT JOIN crm_keys AS k ON k.site_id = p.site_id AND k.crm = p.user_ok
LEFT JOIN refined.work_erased_seen AS xa ON xa.site_id = p.site_id AND xa.node = CONCAT(p.site_id, '|a:', p.anon_ok)
LEFT JOIN refined.work_erased_seen AS xu ON xu.site_id = p.site_id
  AND xu.node IN (CONCAT(p.site_id, '|u:', p.user_ok), CONCAT(p.site_id, '|c:', p.user_ok))
WHERE xa.node IS NULL AND xu.node IS NULL
