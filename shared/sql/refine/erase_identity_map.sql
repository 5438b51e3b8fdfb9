-- Erasure: the person's identifiers leave the identity map.
DELETE FROM refined.identity_map
WHERE node IN (SELECT node FROM refined.work_erase_nodes)
