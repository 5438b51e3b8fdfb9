-- Profile step: the golden profile, one row per active customer, as of the period's end (nothing later is read).
-- Survivorship (docs/refine.md): PII (email, phone, name, sex, birth year, address region, CRM id) takes the
-- most recent non-empty valid value of the best source: CRM/POS records (priority 1) over identify and
-- sign-up calls (priority 2), then the latest event time. Device, os, browser, geo region, user id and consent
-- take the most recent non-empty value. Events at the same microsecond are ordered by a hash of their event id, so a
-- re-run picks the same. Orders count once per order id (refunds subtract their revenue).
-- Windows: value segmentlets (rvn, odr, avg_rvn, ad, cc) cover [value_start, the period's end); 30 days, 3 months
-- (90 days) and 6 months (183 days) are counted back from the period's end; days in the site's time zone, by its
-- UTC offset at the period's end (refined.site_settings, else the default zone's): per-row time zone conversion is
-- slow; across a DST change a day boundary may be off by an hour.
INSERT INTO refined.profiles (
  site_id, customer_id, as_of, first_seen_at, last_seen_at, identifiers, anonymous_ids, user_id, crm_id,
  email, phone, name, sex, birth_year, age, device, os, br, region, ref_media_fst, ref_media_lst, ad, cc,
  kw_inner, kw_outer, pn_odr, pn, rvn, odr, avg_rvn, rvn_ltv, odr_ltv, avg_rvn_ltv,
  recency_days, frequency, monetary, last_order_at, orders_6m, revenue_6m, visits_30d, visits_total,
  pageviews_30d, days_since_last_visit, product_views_3m, searches_3m, add_to_cart_3m, signed_up,
  email_consent, sms_consent, push_consent, push_subscribed, profile_run_id
)
WITH base AS (
  SELECT m.site_id, m.customer_id, COUNT(*) AS identifiers, COUNTIF(m.node_type = 'a') AS anonymous_ids
  FROM refined.identity_map AS m
  GROUP BY m.site_id, m.customer_id
),
clock AS (
  SELECT b.site_id, ANY_VALUE(COALESCE(s.utc_offset_seconds, @default_offset_s)) AS offset_s
  FROM (SELECT DISTINCT site_id FROM base) AS b
  LEFT JOIN refined.site_settings AS s ON s.site_id = b.site_id
  GROUP BY b.site_id
),
node_activity AS (
  -- first per identity node, without a join (the big aggregation), then per customer (a few rows per customer)
  SELECT node,
    MIN(event_time) AS first_seen_at,
    MAX(event_time) AS last_seen_at,
    MAX(k) AS last_k,
    MAX(IF(device_type IS NULL, NULL, k)) AS device_t,
    MAX_BY(device_type, IF(device_type IS NULL, NULL, k)) AS device,
    MAX(IF(os IS NULL, NULL, k)) AS os_t,
    MAX_BY(os, IF(os IS NULL, NULL, k)) AS os,
    MAX(IF(browser IS NULL, NULL, k)) AS br_t,
    MAX_BY(browser, IF(browser IS NULL, NULL, k)) AS br,
    MAX(IF(region IS NULL, NULL, k)) AS geo_t,
    MAX_BY(CONCAT(IFNULL(country, ''), '|', region), IF(region IS NULL, NULL, k)) AS geo_raw,
    MIN(IF(source_table = 'land', k, NULL)) AS land_first_t,
    MIN_BY(medium, IF(source_table = 'land', k, NULL)) AS land_first,
    MAX(IF(source_table = 'land', k, NULL)) AS land_last_t,
    MAX_BY(medium, IF(source_table = 'land', k, NULL)) AS land_last,
    LOGICAL_OR(source_table = 'land' AND event_time >= @value_start AND (medium = 'ad' OR click_id IS NOT NULL)) AS ad,
    LOGICAL_OR(source_table = 'land' AND event_time >= @value_start AND campaign IS NOT NULL) AS cc,
    COUNTIF(source_table = 'page' AND event_time >= TIMESTAMP_SUB(@period_end, INTERVAL 30 DAY)) AS pageviews_30d,
    COUNTIF(source_table = 'event' AND event_type = 'product_view' AND event_time >= TIMESTAMP_SUB(@period_end, INTERVAL 90 DAY)) AS product_views_3m,
    COUNTIF(source_table = 'event' AND event_type = 'search' AND event_time >= TIMESTAMP_SUB(@period_end, INTERVAL 90 DAY)) AS searches_3m,
    COUNTIF(source_table = 'event' AND event_type = 'add_to_cart' AND event_time >= TIMESTAMP_SUB(@period_end, INTERVAL 90 DAY)) AS add_to_cart_3m,
    LOGICAL_OR(source_table = 'conv' AND event_type = 'signup') AS signed_up
  FROM (
    -- the ordering key of survivorship: time, then a hash of the event id, so that two events of a node at the
    -- same microsecond are picked the same way every run (rows of one call share their id and their values).
    -- Whole numbers below 10^29 (microseconds fit 16 digits until 2286).
    SELECT e.*, CAST(UNIX_MICROS(e.event_time) AS BIGNUMERIC) * 10000000000000 + MOD(FARM_FINGERPRINT(e.event_id), 1000000000000) AS k
    FROM refined.events AS e
    WHERE e.event_time < @period_end AND e.node IS NOT NULL
  )
  GROUP BY node
),
activity AS (
  SELECT m.customer_id,
    MIN(n.first_seen_at) AS first_seen_at,
    MAX(n.last_seen_at) AS last_seen_at,
    MAX_BY(IF(m.node_type = 'u', SUBSTR(n.node, LENGTH(m.site_id) + 4), NULL),
           IF(m.node_type = 'u', n.last_k, NULL)) AS user_id,
    MAX_BY(n.device, n.device_t) AS device,
    MAX_BY(n.os, n.os_t) AS os,
    MAX_BY(n.br, n.br_t) AS br,
    MAX_BY(n.geo_raw, n.geo_t) AS geo_raw,
    MIN_BY(n.land_first, n.land_first_t) AS ref_media_fst,
    MAX_BY(n.land_last, n.land_last_t) AS ref_media_lst,
    LOGICAL_OR(n.ad) AS ad,
    LOGICAL_OR(n.cc) AS cc,
    SUM(n.pageviews_30d) AS pageviews_30d,
    SUM(n.product_views_3m) AS product_views_3m,
    SUM(n.searches_3m) AS searches_3m,
    SUM(n.add_to_cart_3m) AS add_to_cart_3m,
    LOGICAL_OR(n.signed_up) AS signed_up
  FROM node_activity AS n
  JOIN refined.identity_map AS m ON m.node = n.node
  GROUP BY m.customer_id
),
ev AS (
  -- the few events the value and list fields read (orders, searches, landings with a keyword, product views)
  SELECT m.customer_id, e.source_table, e.event_type, e.event_id, e.event_time, e.order_id, e.revenue,
    e.keyword, e.product_name
  FROM refined.events AS e
  JOIN refined.identity_map AS m ON m.node = e.node
  WHERE e.event_time < @period_end
    AND ((e.source_table = 'conv' AND e.event_type IN ('order', 'refund'))
      OR (e.source_table = 'event' AND e.event_type IN ('search', 'product_view'))
      OR (e.source_table = 'land' AND e.keyword IS NOT NULL))
),
orders AS (
  SELECT customer_id, event_type, COALESCE(order_id, event_id) AS order_key,
    MIN(event_time) AS event_time, MAX(IFNULL(revenue, 0)) AS revenue
  FROM ev
  WHERE source_table = 'conv' AND event_type IN ('order', 'refund')
  GROUP BY customer_id, event_type, COALESCE(order_id, event_id)
),
value AS (
  SELECT customer_id,
    COUNTIF(event_type = 'order') AS odr_ltv,
    SUM(IF(event_type = 'order', revenue, -ABS(revenue))) AS rvn_ltv,
    COUNTIF(event_type = 'order' AND event_time >= @value_start) AS odr,
    SUM(IF(event_time >= @value_start, IF(event_type = 'order', revenue, -ABS(revenue)), 0)) AS rvn,
    COUNTIF(event_type = 'order' AND event_time >= TIMESTAMP_SUB(@period_end, INTERVAL 183 DAY)) AS orders_6m,
    SUM(IF(event_time >= TIMESTAMP_SUB(@period_end, INTERVAL 183 DAY), IF(event_type = 'order', revenue, -ABS(revenue)), 0)) AS revenue_6m,
    MAX(IF(event_type = 'order', event_time, NULL)) AS last_order_at
  FROM orders
  GROUP BY customer_id
),
visits AS (
  SELECT m.customer_id,
    COUNT(*) AS visits_total,
    COUNTIF(s.started_at >= TIMESTAMP_SUB(@period_end, INTERVAL 30 DAY)) AS visits_30d,
    MAX(s.started_at) AS last_visit_at
  FROM refined.sessions AS s
  JOIN refined.identity_map AS m ON m.node = s.node
  WHERE s.started_at < @period_end
  GROUP BY m.customer_id
),
list_items AS (
  SELECT customer_id, 'kw_inner' AS list, keyword AS item, event_time FROM ev
  WHERE source_table = 'event' AND event_type = 'search' AND keyword IS NOT NULL
  UNION ALL
  SELECT customer_id, 'kw_outer', keyword, event_time FROM ev WHERE source_table = 'land' AND keyword IS NOT NULL
  UNION ALL
  SELECT customer_id, 'pn', product_name, event_time FROM ev
  WHERE source_table = 'event' AND event_type = 'product_view' AND product_name IS NOT NULL
  UNION ALL
  SELECT customer_id, 'pn_odr', TRIM(product), event_time
  FROM ev
  CROSS JOIN UNNEST(SPLIT(product_name, ' | ')) AS product
  WHERE source_table = 'conv' AND event_type = 'order' AND product_name IS NOT NULL
),
list_top AS (
  SELECT customer_id, list, item,
    ROW_NUMBER() OVER (PARTITION BY customer_id, list ORDER BY MAX(event_time) DESC, item) AS rank_recent
  FROM list_items
  WHERE item <> ''
  GROUP BY customer_id, list, item
  QUALIFY ROW_NUMBER() OVER (PARTITION BY customer_id, list ORDER BY MAX(event_time) DESC, item) <= 10
),
-- the ten most recent items in order, without an ordered aggregate (slow on DuckDB): one column per rank
list_text AS (
  SELECT customer_id, list,
    ARRAY_TO_STRING([
      MAX(IF(rank_recent = 1, item, NULL)),
      MAX(IF(rank_recent = 2, item, NULL)),
      MAX(IF(rank_recent = 3, item, NULL)),
      MAX(IF(rank_recent = 4, item, NULL)),
      MAX(IF(rank_recent = 5, item, NULL)),
      MAX(IF(rank_recent = 6, item, NULL)),
      MAX(IF(rank_recent = 7, item, NULL)),
      MAX(IF(rank_recent = 8, item, NULL)),
      MAX(IF(rank_recent = 9, item, NULL)),
      MAX(IF(rank_recent = 10, item, NULL))
    ], ' | ') AS items
  FROM list_top
  GROUP BY customer_id, list
),
lists AS (
  SELECT customer_id,
    MAX(IF(list = 'kw_inner', items, NULL)) AS kw_inner,
    MAX(IF(list = 'kw_outer', items, NULL)) AS kw_outer,
    MAX(IF(list = 'pn', items, NULL)) AS pn,
    MAX(IF(list = 'pn_odr', items, NULL)) AS pn_odr
  FROM list_text
  GROUP BY customer_id
),
traits AS (
  SELECT m.customer_id,
    MAX_BY(t.email, IF(t.email IS NULL, NULL, t.k)) AS email,
    MAX_BY(t.phone, IF(t.phone IS NULL, NULL, t.k)) AS phone,
    MAX_BY(t.name, IF(t.name IS NULL, NULL, t.k)) AS name,
    MAX_BY(t.gender, IF(t.gender IS NULL, NULL, t.k)) AS sex,
    MAX_BY(t.birth_year, IF(t.birth_year IS NULL, NULL, t.k)) AS birth_year,
    MAX_BY(t.address_region, IF(t.address_region IS NULL, NULL, t.k)) AS address_region,
    MAX_BY(t.crm_id, IF(t.crm_id IS NULL, NULL, t.t_k)) AS crm_id,
    MAX_BY(t.consent_email, IF(t.consent_email IS NULL, NULL, t.t_k)) AS email_consent,
    MAX_BY(t.consent_sms, IF(t.consent_sms IS NULL, NULL, t.t_k)) AS sms_consent,
    MAX_BY(t.consent_push, IF(t.consent_push IS NULL, NULL, t.t_k)) AS push_consent,
    LOGICAL_OR(t.push_token IS NOT NULL) AS push_subscribed
  FROM (
    -- ordering keys as for events: source priority (CRM first), then time, then a hash of the event id
    SELECT tr.*,
      CAST((3 - tr.source_priority) * 10000000000000000 + UNIX_MICROS(tr.event_time) AS BIGNUMERIC) * 1000000000000
        + MOD(FARM_FINGERPRINT(tr.event_id), 100000000000) AS k,
      CAST(UNIX_MICROS(tr.event_time) AS BIGNUMERIC) * 10000000000000 + MOD(FARM_FINGERPRINT(tr.event_id), 1000000000000) AS t_k
    FROM refined.traits AS tr
    WHERE tr.event_time < @period_end
  ) AS t
  JOIN refined.identity_map AS m ON m.node = t.node
  GROUP BY m.customer_id
)
SELECT
  b.site_id, b.customer_id, @period_end,
  a.first_seen_at, a.last_seen_at, b.identifiers, b.anonymous_ids, a.user_id, t.crm_id,
  t.email, t.phone, t.name, t.sex, t.birth_year,
  IF(t.birth_year BETWEEN 1900 AND EXTRACT(YEAR FROM @period_end), EXTRACT(YEAR FROM @period_end) - t.birth_year, NULL),
  a.device, a.os, a.br, COALESCE(t.address_region, g.value), a.ref_media_fst, a.ref_media_lst,
  IFNULL(a.ad, FALSE), IFNULL(a.cc, FALSE),
  l.kw_inner, l.kw_outer, l.pn_odr, l.pn,
  IFNULL(v.rvn, 0), IFNULL(v.odr, 0), IF(v.odr > 0, v.rvn / v.odr, NULL),
  IFNULL(v.rvn_ltv, 0), IFNULL(v.odr_ltv, 0), IF(v.odr_ltv > 0, v.rvn_ltv / v.odr_ltv, NULL),
  CAST(FLOOR((UNIX_SECONDS(@period_end) + c.offset_s) / 86400) - FLOOR((UNIX_SECONDS(v.last_order_at) + c.offset_s) / 86400) AS INT64),
  IFNULL(v.odr_ltv, 0), IFNULL(v.rvn_ltv, 0), v.last_order_at, IFNULL(v.orders_6m, 0), IFNULL(v.revenue_6m, 0),
  IFNULL(s.visits_30d, 0), IFNULL(s.visits_total, 0), IFNULL(a.pageviews_30d, 0),
  CAST(FLOOR((UNIX_SECONDS(@period_end) + c.offset_s) / 86400)
    - FLOOR((UNIX_SECONDS(COALESCE(s.last_visit_at, a.last_seen_at)) + c.offset_s) / 86400) AS INT64),
  IFNULL(a.product_views_3m, 0), IFNULL(a.searches_3m, 0), IFNULL(a.add_to_cart_3m, 0), IFNULL(a.signed_up, FALSE),
  t.email_consent, t.sms_consent, t.push_consent, IFNULL(t.push_subscribed, FALSE), @run_id
FROM base AS b
JOIN clock AS c ON c.site_id = b.site_id
LEFT JOIN activity AS a ON a.customer_id = b.customer_id
LEFT JOIN value AS v ON v.customer_id = b.customer_id
LEFT JOIN visits AS s ON s.customer_id = b.customer_id
LEFT JOIN lists AS l ON l.customer_id = b.customer_id
LEFT JOIN traits AS t ON t.customer_id = b.customer_id
LEFT JOIN refined.pii_values AS g ON g.kind = 'geo_region' AND g.raw_value = a.geo_raw AND g.rules_version = @pii_rules_version
