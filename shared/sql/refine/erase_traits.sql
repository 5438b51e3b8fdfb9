-- Erasure: the person's rows of refined.traits.
DELETE FROM refined.traits
WHERE node IN (SELECT node FROM refined.erasures WHERE request_id = @request_id)
