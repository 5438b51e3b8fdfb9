-- Run ledger: where the last successful run's period ended (incremental runs start an overlap before it).
SELECT MAX(period_end) AS period_end
FROM refined.runs
WHERE status = 'succeeded'
