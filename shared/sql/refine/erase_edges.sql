-- Erasure: the person's identity graph edges.
DELETE FROM refined.identity_edges
WHERE src IN (SELECT node FROM refined.work_erase_nodes)
   OR dst IN (SELECT node FROM refined.work_erase_nodes)
