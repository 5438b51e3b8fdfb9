-- Erasure: sessions of the person's devices that carried no node.
DELETE FROM refined.sessions
WHERE CONCAT(site_id, '|a:', device_key) IN (SELECT node FROM refined.work_erase_nodes)
