-- Connected components: the pass's labels become the current ones.
CREATE OR REPLACE TABLE refined.work_labels AS
SELECT node, label
FROM refined.work_labels_next
