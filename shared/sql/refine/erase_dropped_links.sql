-- Erasure: the person's dropped links.
DELETE FROM refined.dropped_links
WHERE src IN (SELECT node FROM refined.work_erase_nodes)
   OR dst IN (SELECT node FROM refined.work_erase_nodes)
