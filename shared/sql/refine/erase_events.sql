-- Erasure: the person's rows of refined.events.
DELETE FROM refined.events
WHERE node IN (SELECT node FROM refined.work_erase_nodes)
