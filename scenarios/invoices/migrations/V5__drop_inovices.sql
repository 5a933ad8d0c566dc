-- Delete old: no live version reads or writes inovices any more.
-- There is no way back from here (no undo file): its rows are gone.
DROP TABLE inovices;
ALTER SEQUENCE inovices_id_seq RENAME TO invoices_id_seq;
