-- What v1, live in production now, does with invoices.

-- @name create invoice
-- @expect rows 1
INSERT INTO inovices (customer, amount) VALUES ('acme', 100) RETURNING id;

-- @name list the invoices of a customer
-- @expect columns id, customer, amount, created_at
SELECT id, customer, amount, created_at FROM inovices WHERE customer = 'acme' ORDER BY id DESC LIMIT 20;

-- @name total per customer
-- @expect rows 3
SELECT customer, sum(amount) FROM inovices GROUP BY customer;

-- @name correct an amount
-- @expect rows 1
UPDATE inovices SET amount = amount + 1 WHERE id = 1;

-- @name a column v1 never had is still an error
-- @expect error 42703
SELECT discount FROM inovices;
