-- Erasure: the person's identity graph edges.
DELETE FROM refined.identity_edges
WHERE src IN (SELECT node FROM refined.erasures WHERE request_id = @request_id)
   OR dst IN (SELECT node FROM refined.erasures WHERE request_id = @request_id)
