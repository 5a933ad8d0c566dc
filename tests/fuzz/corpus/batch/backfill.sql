INSERT INTO invoices (id, customer, amount, created_at)
SELECT id, customer, amount, created_at
FROM inovices o
WHERE NOT EXISTS (SELECT 1 FROM invoices n WHERE n.id = o.id)
ORDER BY id;
