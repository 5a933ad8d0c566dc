-- Read new, stop writing old: v3 inserts into invoices alone, so invoices
-- needs ids. They come from the counter v2 still uses for inovices, so the
-- two versions never hand out the same id while both are live; and the
-- counter moves to invoices, so that dropping inovices later keeps it.
--
-- Both statements below lock inovices and invoices. v2's write-twice insert
-- locks them in that order, inovices first; taking them in the other order
-- deadlocks with it (twinstage's load found it: 40P01 in a few runs of 400,
-- and one insert stalled for deadlock_timeout, 1 s). So both are taken up
-- front, in v2's order, and v2 only waits the few milliseconds this takes.
LOCK TABLE inovices, invoices IN ACCESS EXCLUSIVE MODE;
ALTER SEQUENCE inovices_id_seq OWNED BY invoices.id;
ALTER TABLE invoices ALTER COLUMN id SET DEFAULT nextval('inovices_id_seq');
