-- Run ledger: a run ends, succeeded or failed, with its counts.
UPDATE refined.runs
SET status = @run_status, finished_at = CURRENT_TIMESTAMP(), error = @run_error,
  events_read = @events_read, pii_values_new = @pii_values_new,
  pii_values_restandardised = @pii_values_restandardised, identifiers = @identifiers, edges = @edges,
  dropped_links = @dropped_links, passes = @passes, converged = @converged, customers = @customers,
  customers_new = @customers_new, merges = @merges, profiles = @profiles, duration_seconds = @duration_seconds
WHERE run_id = @run_id
