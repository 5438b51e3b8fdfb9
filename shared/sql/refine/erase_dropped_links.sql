-- Erasure: the person's dropped links.
DELETE FROM refined.dropped_links
WHERE src IN (SELECT node FROM refined.erasures WHERE request_id = @request_id)
   OR dst IN (SELECT node FROM refined.erasures WHERE request_id = @request_id)
