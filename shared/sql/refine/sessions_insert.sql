-- Refine step: the period's sessions. Per device (device_key), a new session starts after 30 minutes without
-- events or at a landing with a new campaign (medium|source|campaign other than the last one seen on the
-- device); each with its landing and exit pages and the campaign it came from. The window runs over a narrow
-- projection (wide rows make DuckDB's window sort slow) and orders by time alone: events of one device at the
-- same microsecond (a page view and its landing row) get the same session start whatever their order.
-- A session cut by the period's start restarts there.
INSERT INTO refined.sessions (
  session_id, site_id, device_key, node, started_at, ended_at, events, pageviews, landing_page, exit_page,
  medium, source, campaign, is_ad, has_campaign
)
WITH keyed AS (
  SELECT site_id, device_key, event_time, UNIX_MICROS(event_time) AS t_us, source_table, event_id, node, page_url,
    medium, source, campaign, click_id,
    IF(source_table = 'land' AND medium <> 'direct',
       CONCAT(medium, '|', IFNULL(source, ''), '|', IFNULL(campaign, '')), NULL) AS land_key
  FROM refined.events
  WHERE event_time >= @period_start AND event_time < @period_end AND device_key IS NOT NULL
),
flagged AS (
  SELECT k.*,
    k.t_us - LAG(k.t_us) OVER (PARTITION BY k.site_id, k.device_key ORDER BY k.t_us) AS gap_us,
    LAST_VALUE(k.land_key IGNORE NULLS) OVER (
      PARTITION BY k.site_id, k.device_key ORDER BY k.t_us
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_land_key
  FROM keyed AS k
),
sessioned AS (
  SELECT f.*,
    -- the running maximum of session starts is the start of the current session (times only grow)
    MAX(IF(f.gap_us IS NULL OR f.gap_us > 1800000000
             OR (f.land_key IS NOT NULL AND f.land_key <> IFNULL(f.prev_land_key, '')), f.t_us, NULL)) OVER (
      PARTITION BY f.site_id, f.device_key ORDER BY f.t_us
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS start_us
  FROM flagged AS f
)
SELECT
  CONCAT(site_id, '|', device_key, '|', CAST(start_us AS STRING)) AS session_id,
  site_id,
  device_key,
  MAX_BY(node, IF(node IS NULL, NULL, t_us)),
  MIN(event_time),
  MAX(event_time),
  COUNT(*),
  COUNTIF(source_table = 'page'),
  MIN_BY(page_url, IF(source_table = 'page' AND page_url IS NOT NULL, t_us, NULL)),
  MAX_BY(page_url, IF(source_table = 'page' AND page_url IS NOT NULL, t_us, NULL)),
  MIN_BY(medium, IF(source_table = 'land', t_us, NULL)),
  MIN_BY(source, IF(source_table = 'land', t_us, NULL)),
  MIN_BY(campaign, IF(source_table = 'land', t_us, NULL)),
  LOGICAL_OR(source_table = 'land' AND (medium = 'ad' OR click_id IS NOT NULL)),
  LOGICAL_OR(source_table = 'land' AND campaign IS NOT NULL)
FROM sessioned
GROUP BY site_id, device_key, start_us
