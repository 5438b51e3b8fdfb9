-- Site settings: a site's time zone (IANA name) and its UTC offset at the run's as-of.
INSERT INTO refined.site_settings (site_id, time_zone, utc_offset_seconds, updated_at)
VALUES (@site_id, @time_zone, @utc_offset_seconds, CURRENT_TIMESTAMP())
