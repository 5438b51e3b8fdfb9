-- Erasure: the person's rows of refined.sessions.
DELETE FROM refined.sessions
WHERE node IN (SELECT node FROM refined.work_erase_nodes)
