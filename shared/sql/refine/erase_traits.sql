-- Erasure: the person's rows of refined.traits.
DELETE FROM refined.traits
WHERE node IN (SELECT node FROM refined.work_erase_nodes)
