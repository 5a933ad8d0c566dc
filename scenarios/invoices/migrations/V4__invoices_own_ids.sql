-- Read new, stop writing old: v3 inserts into invoices alone, so invoices
-- needs ids. They come from the counter v2 still uses for inovices, so the
-- two versions never hand out the same id while both are live; and the
-- counter moves to invoices, so that dropping inovices later keeps it.
ALTER SEQUENCE inovices_id_seq OWNED BY invoices.id;
ALTER TABLE invoices ALTER COLUMN id SET DEFAULT nextval('inovices_id_seq');
