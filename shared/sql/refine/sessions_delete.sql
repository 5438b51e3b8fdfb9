-- Refine step: the period's sessions are replaced (idempotent re-runs).
DELETE FROM refined.sessions
WHERE started_at >= @period_start AND started_at < @period_end
