-- Site settings: every site's time zone.
SELECT site_id, time_zone FROM refined.site_settings
