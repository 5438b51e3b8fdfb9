-- Erasure: the request records how many rows it erased.
UPDATE refined.erasures
SET rows_erased = @rows_erased
WHERE request_id = @request_id
