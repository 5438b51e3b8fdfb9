-- Erasure: the request records how many rows it erased, over every attempt (a repeat on BigQuery deletes the
-- rows the streaming buffer held back the first time).
UPDATE refined.erasures
SET rows_erased = IFNULL(rows_erased, 0) + @rows_erased
WHERE request_id = @request_id
