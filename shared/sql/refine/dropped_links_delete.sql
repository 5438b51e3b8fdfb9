-- Identity: the dropped links are replaced by the run's.
DELETE FROM refined.dropped_links WHERE TRUE
