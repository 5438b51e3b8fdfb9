-- Run ledger: a run starts (DML, not streaming, so that run_finish.sql can update it on BigQuery too).
INSERT INTO refined.runs (run_id, `trigger`, mode, period_start, period_end, started_at, status)
VALUES (@run_id, @run_trigger, @run_mode, @period_start, @period_end, CURRENT_TIMESTAMP(), 'running')
