-- Refine step: the period's sessions. Per device (device_key), a new session starts after 30 minutes without
-- events or at a landing with a new campaign (medium|source|campaign other than the last one seen on the
-- device); each with its landing and exit pages and the campaign it came from. The window runs over a narrow
-- projection (wide rows make DuckDB's window sort slow). Every window orders the same total way (time, then
-- event id and table): with time alone, rows of one device at the same microsecond (a page view and its landing
-- row) could come in one order to LAG and in another to the running MAX, and a device's first row would start no
-- session. Rows at the same microsecond still share a session start (a session is keyed by its start time).
-- A session's pages, campaign and node are picked by the rows' place in that order, so a re-run picks the same.
-- A session going on across the period's start is redone from its start (sessions_boundary.sql).
INSERT INTO refined.sessions (
  session_id, site_id, device_key, node, started_at, ended_at, events, pageviews, landing_page, exit_page,
  medium, source, campaign, is_ad, has_campaign
)
WITH keyed AS (
  SELECT e.site_id, e.device_key, e.event_time, UNIX_MICROS(e.event_time) AS t_us, e.source_table, e.event_id, e.node,
    e.page_url, e.medium, e.source, e.campaign, e.click_id,
    IF(e.source_table = 'land' AND e.medium <> 'direct',
       CONCAT(e.medium, '|', IFNULL(e.source, ''), '|', IFNULL(e.campaign, '')), NULL) AS land_key
  FROM refined.events AS e
  LEFT JOIN refined.work_session_boundary AS b ON b.site_id = e.site_id AND b.device_key = e.device_key
  WHERE e.event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY) AND e.event_time < @period_end
    AND e.event_time >= COALESCE(b.from_time, @period_start) AND e.device_key IS NOT NULL
),
flagged AS (
  SELECT k.*,
    -- the rows' place in that order: what the session's pages, campaign and node are picked by (ties included)
    ROW_NUMBER() OVER (PARTITION BY k.site_id, k.device_key ORDER BY k.t_us, k.event_id, k.source_table) AS seq,
    k.t_us - LAG(k.t_us) OVER (PARTITION BY k.site_id, k.device_key ORDER BY k.t_us, k.event_id, k.source_table) AS gap_us,
    LAST_VALUE(k.land_key IGNORE NULLS) OVER (
      PARTITION BY k.site_id, k.device_key ORDER BY k.t_us, k.event_id, k.source_table
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_land_key
  FROM keyed AS k
),
sessioned AS (
  SELECT f.*,
    -- the running maximum of session starts is the start of the current session (times only grow)
    MAX(IF(f.gap_us IS NULL OR f.gap_us > 1800000000
             OR (f.land_key IS NOT NULL AND f.land_key <> IFNULL(f.prev_land_key, '')), f.t_us, NULL)) OVER (
      PARTITION BY f.site_id, f.device_key ORDER BY f.t_us, f.event_id, f.source_table
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS start_us
  FROM flagged AS f
)
SELECT
  CONCAT(site_id, '|', device_key, '|', CAST(start_us AS STRING)) AS session_id,
  site_id,
  device_key,
  MAX_BY(node, IF(node IS NULL, NULL, seq)),
  MIN(event_time),
  MAX(event_time),
  COUNT(*),
  COUNTIF(source_table = 'page'),
  MIN_BY(page_url, IF(source_table = 'page' AND page_url IS NOT NULL, seq, NULL)),
  MAX_BY(page_url, IF(source_table = 'page' AND page_url IS NOT NULL, seq, NULL)),
  MIN_BY(medium, IF(source_table = 'land', seq, NULL)),
  MIN_BY(source, IF(source_table = 'land', seq, NULL)),
  MIN_BY(campaign, IF(source_table = 'land', seq, NULL)),
  LOGICAL_OR(source_table = 'land' AND (medium = 'ad' OR click_id IS NOT NULL)),
  LOGICAL_OR(source_table = 'land' AND campaign IS NOT NULL)
FROM sessioned
GROUP BY site_id, device_key, start_us
