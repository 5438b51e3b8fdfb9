-- Profile step: the golden profiles are replaced by the run's.
DELETE FROM refined.profiles WHERE TRUE
