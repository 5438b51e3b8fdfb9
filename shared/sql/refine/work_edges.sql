-- Identity step 3: every edge with the guard that drops it (drop_reason NULL: the edge joins customers).
--   junk_identifier    an end is a junk value (empty, 0, -1, null, undefined, guest, [object Object], ...)
--   crm_on_many_users  a CRM id carried by user ids of more than one strong group (not joined by alias)
--   shared_identifier  a device seen with more than one strong group, an email / phone seen with user ids of
--                      more than one, or with CRM ids of more than one (shared laptops, family phones, test
--                      accounts): it joins none of them. One login and one CRM record may share an email or
--                      phone: that is one person.
--   too_many_links     an id linked to more than the max_links parameter ids of one type (a test account logged in on
--                      dozens of devices, a shop's own email typed into many sign-ups): it links none of
--                      them, so no customer gathers more than the max_links parameter ids of a type through one id
CREATE OR REPLACE TABLE refined.work_edges
OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS
WITH typed AS (
  SELECT e.site_id, e.src, e.dst, e.kind, e.blocked, e.first_seen,
    SUBSTR(e.src, LENGTH(e.site_id) + 2, 1) AS src_type, SUBSTR(e.dst, LENGTH(e.site_id) + 2, 1) AS dst_type
  FROM refined.identity_edges AS e
),
ends AS (
  SELECT site_id, src AS node, src_type AS node_type, dst AS other, dst_type AS other_type, first_seen FROM typed WHERE blocked IS NULL
  UNION ALL
  SELECT site_id, dst, dst_type, src, src_type, first_seen FROM typed WHERE blocked IS NULL
),
-- What each strong group holds: a web login (user id), a CRM record, or both.
group_kinds AS (
  SELECT grp,
    LOGICAL_OR(SUBSTR(node, STRPOS(node, '|') + 1, 1) = 'u') AS has_user,
    LOGICAL_OR(SUBSTR(node, STRPOS(node, '|') + 1, 1) = 'c') AS has_crm
  FROM refined.work_strong_groups
  GROUP BY grp
),
-- An e-mail or phone may join one login group and one CRM record (the same person online and in the shop's
-- CRM), never two of either: that would merge two logins or two CRM records. A device may join one strong
-- group only: two ids logging in on one device (a member number and another login) is a shared device.
strong_reach AS (
  SELECT n.node,
    COUNT(DISTINCT COALESCE(g.grp, n.other)) AS groups,
    COUNT(DISTINCT IF(COALESCE(k.has_user, n.other_type = 'u'), COALESCE(g.grp, n.other), NULL)) AS user_groups,
    COUNT(DISTINCT IF(COALESCE(k.has_crm, n.other_type = 'c'), COALESCE(g.grp, n.other), NULL)) AS crm_groups
  FROM ends AS n
  LEFT JOIN refined.work_strong_groups AS g ON g.node = n.other
  LEFT JOIN group_kinds AS k ON k.grp = g.grp
  WHERE n.node_type IN ('a', 'e', 'p') AND n.other_type IN ('u', 'c')
  GROUP BY n.node
),
shared_ids AS (
  SELECT node,
    CASE
      WHEN user_groups > 1 THEN CONCAT(CAST(user_groups AS STRING), ' customers with user ids')
      WHEN crm_groups > 1 THEN CONCAT(CAST(crm_groups AS STRING), ' customers with CRM ids')
      ELSE CONCAT(CAST(groups AS STRING), ' customers logged in on the device')
    END AS detail
  FROM strong_reach
  WHERE GREATEST(user_groups, crm_groups) > 1 OR (SUBSTR(node, STRPOS(node, '|') + 1, 1) = 'a' AND groups > 1)
),
crm_users AS (
  SELECT n.node AS crm, COUNT(DISTINCT COALESCE(g.grp, n.other)) AS users
  FROM ends AS n
  LEFT JOIN refined.work_strong_groups AS g ON g.node = n.other
  WHERE n.node_type = 'c' AND n.other_type = 'u'
  GROUP BY n.node
),
fan AS (
  SELECT node, other_type, COUNT(DISTINCT other) AS links
  FROM ends
  GROUP BY node, other_type
  HAVING COUNT(DISTINCT other) > @max_links
),
over_cap AS (
  SELECT DISTINCT n.node, n.other, 'too_many_links' AS reason,
    CONCAT(CAST(f.links AS STRING), ' ', f.other_type, ' ids') AS detail
  FROM ends AS n
  JOIN fan AS f ON f.node = n.node AND f.other_type = n.other_type
)
SELECT
  t.site_id, t.src, t.dst, t.kind, t.src_type, t.dst_type, t.first_seen,
  CASE
    WHEN t.blocked IS NOT NULL THEN t.blocked
    WHEN t.kind = 'crm' AND t.src_type = 'u' AND cu.users > 1 THEN 'crm_on_many_users'
    WHEN (t.src_type IN ('a', 'e', 'p') AND t.dst_type IN ('u', 'c') AND rs.node IS NOT NULL)
      OR (t.dst_type IN ('a', 'e', 'p') AND t.src_type IN ('u', 'c') AND rd.node IS NOT NULL) THEN 'shared_identifier'
    WHEN cs.node IS NOT NULL THEN cs.reason
    WHEN cd.node IS NOT NULL THEN cd.reason
  END AS drop_reason,
  CASE
    WHEN t.blocked IS NOT NULL THEN NULL
    WHEN t.kind = 'crm' AND t.src_type = 'u' AND cu.users > 1 THEN CONCAT(CAST(cu.users AS STRING), ' user ids not joined by an alias')
    WHEN t.src_type IN ('a', 'e', 'p') AND t.dst_type IN ('u', 'c') AND rs.node IS NOT NULL THEN rs.detail
    WHEN t.dst_type IN ('a', 'e', 'p') AND t.src_type IN ('u', 'c') AND rd.node IS NOT NULL THEN rd.detail
    ELSE COALESCE(cs.detail, cd.detail)
  END AS detail
FROM typed AS t
LEFT JOIN crm_users AS cu ON cu.crm = t.dst
LEFT JOIN shared_ids AS rs ON rs.node = t.src
LEFT JOIN shared_ids AS rd ON rd.node = t.dst
LEFT JOIN over_cap AS cs ON cs.node = t.src AND cs.other = t.dst
LEFT JOIN over_cap AS cd ON cd.node = t.dst AND cd.other = t.src
