-- Erasure: the person's golden profile.
DELETE FROM refined.profiles
WHERE customer_id IN (SELECT customer_id FROM refined.erasures WHERE request_id = @request_id)
