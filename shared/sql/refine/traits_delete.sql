-- Refine step: the period's traits are replaced (idempotent re-runs).
DELETE FROM refined.traits
WHERE event_time >= @period_start AND event_time < @period_end
