-- Refine step: cached values standardised by other rules than the current ones go, once their new form is in
-- (pii_candidates.sql picked them up; a run that stops in between leaves both, and the next one ends it here).
DELETE FROM refined.pii_values WHERE IFNULL(rules_version, '') <> @pii_rules_version
