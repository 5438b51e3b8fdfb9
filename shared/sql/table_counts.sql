-- Rows per raw table with event time from the given moment on: as stored, and as later stages see them (event ids once).
SELECT 'user' AS table_name, (SELECT COUNT(*) FROM raw.`user` WHERE event_time >= @since) AS stored, (SELECT COUNT(*) FROM raw.user_unique WHERE event_time >= @since) AS unique_events
UNION ALL SELECT 'page', (SELECT COUNT(*) FROM raw.page WHERE event_time >= @since), (SELECT COUNT(*) FROM raw.page_unique WHERE event_time >= @since)
UNION ALL SELECT 'land', (SELECT COUNT(*) FROM raw.land WHERE event_time >= @since), (SELECT COUNT(*) FROM raw.land_unique WHERE event_time >= @since)
UNION ALL SELECT 'conv', (SELECT COUNT(*) FROM raw.conv WHERE event_time >= @since), (SELECT COUNT(*) FROM raw.conv_unique WHERE event_time >= @since)
UNION ALL SELECT 'event', (SELECT COUNT(*) FROM raw.event WHERE event_time >= @since), (SELECT COUNT(*) FROM raw.event_unique WHERE event_time >= @since)
