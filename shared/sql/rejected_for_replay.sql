-- Rejected collect-stage records to replay, oldest first, optionally of one reason.
SELECT rejected_id, received_at, reason_code, reason, site_id, endpoint, payload, payload_truncated
FROM ops.rejected
WHERE stage = 'collect'
  AND received_at >= @since
  AND (@reason_code = '' OR reason_code = @reason_code)
ORDER BY received_at
