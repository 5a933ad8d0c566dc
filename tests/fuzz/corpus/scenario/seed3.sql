-- What v3 does: read new, stop writing old. It never names inovices.

-- @name create invoice
-- @expect rows 1
INSERT INTO invoices (customer, amount) VALUES ('acme', 100) RETURNING id;

-- @name list the invoices of a customer
-- @expect columns id, customer, amount, created_at
SELECT id, customer, amount, created_at FROM invoices WHERE customer = 'acme' ORDER BY id DESC LIMIT 20;

-- @name total per customer
-- @expect rows 3
SELECT customer, sum(amount) FROM invoices GROUP BY customer;
