-- What v1, live now, sends: it knows the customer column.
-- @name record an order
-- @expect rows 1
INSERT INTO orders (customer, amount) VALUES ('acme', 120) RETURNING id;

-- @name orders of a customer
-- @expect columns id, customer, amount
SELECT id, customer, amount FROM orders WHERE customer = 'customer 7' ORDER BY id LIMIT 10;
