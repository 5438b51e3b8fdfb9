-- Erasure: the person's identifiers leave the identity map.
DELETE FROM refined.identity_map
WHERE node IN (SELECT node FROM refined.erasures WHERE request_id = @request_id)
