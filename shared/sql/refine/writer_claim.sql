-- One writer at a time (shared/refine/writers.py): a refine run or an erasure claims the refined tables first.
-- DML, not streaming, so the claim is visible to the very next query (writers_other.sql) on BigQuery too.
INSERT INTO refined.writers (holder_id, kind, claimed_at)
VALUES (@holder_id, @holder_kind, CURRENT_TIMESTAMP())
