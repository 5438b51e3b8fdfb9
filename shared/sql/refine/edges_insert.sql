-- Refine step: identity graph edges seen in the period, appended when new (the graph accumulates over runs).
-- Nodes are site|type:value: a anonymous id, u user id, c CRM id, e email, p phone (E.164).
-- An edge with a junk end (blocked) is kept so that the guard's drop is visible in refined.dropped_links.
-- alias(previous_id -> user_id): the previous id may have been an anonymous id or an older user id.
INSERT INTO refined.identity_edges (site_id, src, dst, kind, blocked, first_seen, first_run_id)
WITH seen AS (
  -- The event's own node when its user id is a CRM id (events_insert), else the user id's.
  SELECT site_id,
    IF(STARTS_WITH(node, CONCAT(site_id, '|c:')), node, CONCAT(site_id, '|u:', TRIM(user_id))) AS src,
    CONCAT(site_id, '|a:', TRIM(anonymous_id)) AS dst,
    'anon_user' AS kind, user_id AS src_raw, anonymous_id AS dst_raw, event_time
  FROM refined.events
  WHERE event_time >= @period_start AND event_time < @period_end
    AND user_id IS NOT NULL AND anonymous_id IS NOT NULL
  UNION ALL
  SELECT site_id, node, CONCAT(site_id, '|e:', email), 'email', node, email, event_time
  FROM refined.traits
  WHERE event_time >= @period_start AND event_time < @period_end AND node IS NOT NULL AND email IS NOT NULL
  UNION ALL
  SELECT site_id, node, CONCAT(site_id, '|p:', phone), 'phone', node, phone, event_time
  FROM refined.traits
  WHERE event_time >= @period_start AND event_time < @period_end AND node IS NOT NULL AND phone IS NOT NULL
  UNION ALL
  SELECT site_id, node, CONCAT(site_id, '|c:', crm_id), 'crm', node, crm_id, event_time
  FROM refined.traits
  WHERE event_time >= @period_start AND event_time < @period_end AND node IS NOT NULL AND crm_id IS NOT NULL
  UNION ALL
  SELECT site_id, CONCAT(site_id, '|u:', TRIM(user_id)), CONCAT(site_id, prefix, TRIM(previous_id)), 'alias',
    user_id, previous_id, event_time
  FROM raw.`user`
  CROSS JOIN UNNEST(['|u:', '|a:']) AS prefix
  WHERE event_time >= @period_start AND event_time < @period_end
    AND `call` = 'alias' AND user_id IS NOT NULL AND previous_id IS NOT NULL
),
distinct_edges AS (
  SELECT site_id, src, dst, kind,
    LOGICAL_OR(REGEXP_CONTAINS(LOWER(TRIM(src_raw)), @junk_pattern) OR REGEXP_CONTAINS(LOWER(TRIM(dst_raw)), @junk_pattern)) AS junk,
    MIN(event_time) AS first_seen
  FROM seen
  WHERE src <> dst
  GROUP BY site_id, src, dst, kind
)
SELECT d.site_id, d.src, d.dst, d.kind, IF(d.junk, 'junk_identifier', NULL), d.first_seen, @run_id
FROM distinct_edges AS d
LEFT JOIN refined.identity_edges AS e ON e.site_id = d.site_id AND e.src = d.src AND e.dst = d.dst AND e.kind = d.kind
WHERE e.src IS NULL
