-- Identity: every edge a guard dropped, and why (work_edges.sql, conflicts_drop.sql).
INSERT INTO refined.dropped_links (site_id, src, dst, kind, reason, detail, run_id, recorded_at)
SELECT site_id, src, dst, kind, drop_reason, detail, @run_id, CURRENT_TIMESTAMP()
FROM refined.work_edges
WHERE drop_reason IS NOT NULL
