-- v2 of this release reads and writes the renamed table.

-- @name create invoice
-- @expect rows 1
INSERT INTO invoices (customer, amount) VALUES ('acme', 100) RETURNING id;

-- @name total per customer
-- @expect rows 3
SELECT customer, sum(amount) FROM invoices GROUP BY customer;
