-- What was rejected, where and why, most frequent first.
SELECT stage, reason_code, COUNT(*) AS records, ANY_VALUE(reason) AS example_reason
FROM ops.rejected
WHERE received_at >= @since
GROUP BY stage, reason_code
ORDER BY records DESC, stage, reason_code
