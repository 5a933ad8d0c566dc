-- What the live version (v1) runs, as its role.

-- @name orders of a customer
-- @expect rows 10
SELECT id, placed_at, total FROM orders WHERE customer_id = 42 ORDER BY placed_at;

-- @name place an order
-- @expect rows 1
INSERT INTO orders (customer_id, placed_at, total) VALUES (42, now(), 10.00) RETURNING id;

-- @name orders never placed (a report nobody fixed: placed_at is NOT NULL)
-- @expect rows 0
SELECT count(*) AS n FROM orders WHERE placed_at IS NULL HAVING count(*) > 0;

-- @name revenue by country
SELECT c.country, sum(o.total) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.country;
