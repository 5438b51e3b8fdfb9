-- Run ledger: what a run leaves behind.
SELECT
  (SELECT COUNT(*) FROM refined.events WHERE event_time >= @period_start AND event_time < @period_end) AS events_read,
  (SELECT COUNT(*) FROM refined.identity_map) AS identifiers,
  (SELECT COUNT(*) FROM refined.identity_edges) AS edges,
  (SELECT COUNT(*) FROM refined.dropped_links) AS dropped_links,
  (SELECT COUNT(DISTINCT customer_id) FROM refined.work_assign) AS customers,
  (SELECT COUNT(*) FROM refined.customers WHERE created_run_id = @run_id) AS customers_new,
  (SELECT COUNT(*) FROM refined.customer_merges WHERE run_id = @run_id) AS merges,
  (SELECT COUNT(*) FROM refined.profiles) AS profiles
