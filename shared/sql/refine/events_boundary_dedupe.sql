-- Refine step (partial periods only): an event whose redelivered copy has a skew-corrected time on the other
-- side of the period boundary was already refined by an earlier run; the period's copy is removed.
DELETE FROM refined.events AS e
WHERE e.event_time >= @period_start AND e.event_time < @period_end
  AND EXISTS (
    SELECT 1 FROM refined.events AS o
    WHERE o.event_id = e.event_id AND o.source_table = e.source_table
      AND o.event_time >= TIMESTAMP_SUB(@period_start, INTERVAL 1 DAY)
      AND o.event_time < TIMESTAMP_ADD(@period_end, INTERVAL 1 DAY)
      AND (o.event_time < @period_start OR o.event_time >= @period_end)
  )
