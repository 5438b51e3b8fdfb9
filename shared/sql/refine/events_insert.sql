-- Refine step: the period's unique raw events of the five raw tables, narrowed, with their identity node.
-- Dedupe (pitfall 9): the first row received per event id within its table, over the period widened by a day
-- each side so that retries straddling the boundary are seen together. Only ids that occur more than once go
-- through the window (a narrow GROUP BY finds them), the rest pass straight through.
-- Node: the user id's when there is a valid one, else the anonymous id's (junk ids are no node); device key:
-- the valid anonymous id, else the valid user id (sessions are per device).
-- Times are the skew-corrected event_time. Events of erased identifiers (refined.work_erased_seen, from the tombstones) are not re-profiled.
INSERT INTO refined.events (
  event_id, source_table, site_id, `call`, event_time, received_at, anonymous_id, user_id, node, device_key,
  device_type, os, browser, country, region, page_url, medium, source, campaign, click_id, keyword,
  event_type, event_name, product_name, order_id, revenue, currency
)
WITH dup_user AS (
  SELECT event_id FROM raw.`user`
  WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  GROUP BY event_id HAVING COUNT(*) > 1
),
dup_page AS (
  SELECT event_id FROM raw.page
  WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  GROUP BY event_id HAVING COUNT(*) > 1
),
dup_land AS (
  SELECT event_id FROM raw.land
  WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  GROUP BY event_id HAVING COUNT(*) > 1
),
dup_conv AS (
  SELECT event_id FROM raw.conv
  WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  GROUP BY event_id HAVING COUNT(*) > 1
),
dup_event AS (
  SELECT event_id FROM raw.event
  WHERE event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  GROUP BY event_id HAVING COUNT(*) > 1
),
unioned AS (
  SELECT 'user' AS source_table, ur.event_id, ur.site_id, ur.`call`, ur.event_time, ur.received_at, ur.anonymous_id, ur.user_id, ur.device_type, ur.os, ur.browser, ur.country, ur.region, ur.page_url,
    CAST(NULL AS STRING) AS medium, CAST(NULL AS STRING) AS source, CAST(NULL AS STRING) AS campaign, CAST(NULL AS STRING) AS click_id, CAST(NULL AS STRING) AS keyword, CAST(NULL AS STRING) AS event_type, CAST(NULL AS STRING) AS event_name, CAST(NULL AS STRING) AS product_name, CAST(NULL AS STRING) AS order_id, CAST(NULL AS FLOAT64) AS revenue, CAST(NULL AS STRING) AS currency
  FROM raw.`user` AS ur LEFT JOIN dup_user AS d ON d.event_id = ur.event_id
  WHERE ur.event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND ur.event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY) AND d.event_id IS NULL
  UNION ALL
  SELECT 'user', ur.event_id, ur.site_id, ur.`call`, ur.event_time, ur.received_at, ur.anonymous_id, ur.user_id, ur.device_type, ur.os, ur.browser, ur.country, ur.region, ur.page_url,
    CAST(NULL AS STRING) AS medium, CAST(NULL AS STRING) AS source, CAST(NULL AS STRING) AS campaign, CAST(NULL AS STRING) AS click_id, CAST(NULL AS STRING) AS keyword, CAST(NULL AS STRING) AS event_type, CAST(NULL AS STRING) AS event_name, CAST(NULL AS STRING) AS product_name, CAST(NULL AS STRING) AS order_id, CAST(NULL AS FLOAT64) AS revenue, CAST(NULL AS STRING) AS currency
  FROM raw.`user` AS ur JOIN dup_user AS d ON d.event_id = ur.event_id
  WHERE ur.event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND ur.event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  QUALIFY ROW_NUMBER() OVER (PARTITION BY ur.event_id ORDER BY ur.received_at, ur.event_time) = 1
  UNION ALL
  SELECT 'page', pr.event_id, pr.site_id, pr.`call`, pr.event_time, pr.received_at, pr.anonymous_id, pr.user_id, pr.device_type, pr.os, pr.browser, pr.country, pr.region, pr.page_url,
    NULL, NULL, NULL, NULL, NULL, NULL, pr.name, NULL, NULL, NULL, NULL
  FROM raw.page AS pr LEFT JOIN dup_page AS d ON d.event_id = pr.event_id
  WHERE pr.event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND pr.event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY) AND d.event_id IS NULL
  UNION ALL
  SELECT 'page', pr.event_id, pr.site_id, pr.`call`, pr.event_time, pr.received_at, pr.anonymous_id, pr.user_id, pr.device_type, pr.os, pr.browser, pr.country, pr.region, pr.page_url,
    NULL, NULL, NULL, NULL, NULL, NULL, pr.name, NULL, NULL, NULL, NULL
  FROM raw.page AS pr JOIN dup_page AS d ON d.event_id = pr.event_id
  WHERE pr.event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND pr.event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  QUALIFY ROW_NUMBER() OVER (PARTITION BY pr.event_id ORDER BY pr.received_at, pr.event_time) = 1
  UNION ALL
  SELECT 'land', lr.event_id, lr.site_id, lr.`call`, lr.event_time, lr.received_at, lr.anonymous_id, lr.user_id, lr.device_type, lr.os, lr.browser, lr.country, lr.region, lr.page_url,
    lr.medium, lr.source, lr.campaign, lr.click_id, lr.search_keyword, NULL, NULL, NULL, NULL, NULL, NULL
  FROM raw.land AS lr LEFT JOIN dup_land AS d ON d.event_id = lr.event_id
  WHERE lr.event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND lr.event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY) AND d.event_id IS NULL
  UNION ALL
  SELECT 'land', lr.event_id, lr.site_id, lr.`call`, lr.event_time, lr.received_at, lr.anonymous_id, lr.user_id, lr.device_type, lr.os, lr.browser, lr.country, lr.region, lr.page_url,
    lr.medium, lr.source, lr.campaign, lr.click_id, lr.search_keyword, NULL, NULL, NULL, NULL, NULL, NULL
  FROM raw.land AS lr JOIN dup_land AS d ON d.event_id = lr.event_id
  WHERE lr.event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND lr.event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  QUALIFY ROW_NUMBER() OVER (PARTITION BY lr.event_id ORDER BY lr.received_at, lr.event_time) = 1
  UNION ALL
  SELECT 'conv', cr.event_id, cr.site_id, cr.`call`, cr.event_time, cr.received_at, cr.anonymous_id, cr.user_id, cr.device_type, cr.os, cr.browser, cr.country, cr.region, cr.page_url,
    NULL, NULL, NULL, NULL, NULL, cr.conv_type, cr.event_name, cr.product_names, cr.order_id, cr.revenue, cr.currency
  FROM raw.conv AS cr LEFT JOIN dup_conv AS d ON d.event_id = cr.event_id
  WHERE cr.event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND cr.event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY) AND d.event_id IS NULL
  UNION ALL
  SELECT 'conv', cr.event_id, cr.site_id, cr.`call`, cr.event_time, cr.received_at, cr.anonymous_id, cr.user_id, cr.device_type, cr.os, cr.browser, cr.country, cr.region, cr.page_url,
    NULL, NULL, NULL, NULL, NULL, cr.conv_type, cr.event_name, cr.product_names, cr.order_id, cr.revenue, cr.currency
  FROM raw.conv AS cr JOIN dup_conv AS d ON d.event_id = cr.event_id
  WHERE cr.event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND cr.event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  QUALIFY ROW_NUMBER() OVER (PARTITION BY cr.event_id ORDER BY cr.received_at, cr.event_time) = 1
  UNION ALL
  SELECT 'event', er.event_id, er.site_id, er.`call`, er.event_time, er.received_at, er.anonymous_id, er.user_id, er.device_type, er.os, er.browser, er.country, er.region, er.page_url,
    NULL, NULL, NULL, NULL, er.search_keyword, er.event_type, er.event_name, er.product_name, NULL, er.price, NULL
  FROM raw.event AS er LEFT JOIN dup_event AS d ON d.event_id = er.event_id
  WHERE er.event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND er.event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY) AND d.event_id IS NULL
  UNION ALL
  SELECT 'event', er.event_id, er.site_id, er.`call`, er.event_time, er.received_at, er.anonymous_id, er.user_id, er.device_type, er.os, er.browser, er.country, er.region, er.page_url,
    NULL, NULL, NULL, NULL, er.search_keyword, er.event_type, er.event_name, er.product_name, NULL, er.price, NULL
  FROM raw.event AS er JOIN dup_event AS d ON d.event_id = er.event_id
  WHERE er.event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND er.event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
  QUALIFY ROW_NUMBER() OVER (PARTITION BY er.event_id ORDER BY er.received_at, er.event_time) = 1
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
