-- Full rebuild: the identity graph is rebuilt from raw (customer ids survive through refined.identity_map).
DELETE FROM refined.identity_edges WHERE TRUE
