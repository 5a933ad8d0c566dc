-- The way back from V4: the counter belongs to inovices again.
ALTER TABLE invoices ALTER COLUMN id DROP DEFAULT;
ALTER SEQUENCE inovices_id_seq OWNED BY inovices.id;
