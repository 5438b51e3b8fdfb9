-- Identity step 11: the identity map is replaced by the run's assignment.
DELETE FROM refined.identity_map WHERE TRUE
