-- Erasure: the customer id is kept (merges point at it) but marked erased.
UPDATE refined.customers
SET status = 'erased'
WHERE customer_id IN (SELECT customer_id FROM refined.erasures WHERE request_id = @request_id)
