-- Site settings: a site's time zone is replaced.
DELETE FROM refined.site_settings WHERE site_id = @site_id
