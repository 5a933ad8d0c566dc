-- What v2, the version this release ships, does: write twice, read old.

-- @name create invoice in both tables
-- @expect rows 1
WITH old AS (
    INSERT INTO inovices (customer, amount) VALUES ('acme', 100)
    RETURNING id, customer, amount, created_at
)
INSERT INTO invoices (id, customer, amount, created_at)
SELECT id, customer, amount, created_at FROM old
RETURNING id;

-- @name list the invoices of a customer, still from the old table
-- @expect columns id, customer, amount, created_at
SELECT id, customer, amount, created_at FROM inovices WHERE customer = 'acme' ORDER BY id DESC LIMIT 20;

-- @name total per customer
-- @expect rows 3
SELECT customer, sum(amount) FROM inovices GROUP BY customer;
