-- Refine step: the period's refined events are replaced (idempotent re-runs).
DELETE FROM refined.events
WHERE event_time >= @period_start AND event_time < @period_end
