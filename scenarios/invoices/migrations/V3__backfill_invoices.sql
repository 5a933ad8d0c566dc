-- Backfill: copy the rows v2 has not written twice. On a live table this
-- runs in batches, each in its own short transaction; twinstage reruns the
-- statement with a LIMIT until it copies nothing more.
-- twinstage:batch 1000
INSERT INTO invoices (id, customer, amount, created_at)
SELECT id, customer, amount, created_at
FROM inovices o
WHERE NOT EXISTS (SELECT 1 FROM invoices n WHERE n.id = o.id)
ORDER BY id;
