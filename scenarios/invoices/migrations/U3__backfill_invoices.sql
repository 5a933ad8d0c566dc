-- The way back from V3: nothing to undo. The copied rows stay in
-- invoices, which v1 never reads and v2 keeps writing.
SELECT 1;
