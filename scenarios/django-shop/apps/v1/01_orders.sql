-- What v1, live now, sends: it knows the customer column.
-- @name record an order
-- @expect rows 1
INSERT INTO shop_order (customer, amount) VALUES ('acme', 120) RETURNING id;

-- @name orders of a customer
-- @expect columns id, customer, amount
SELECT id, customer, amount FROM shop_order WHERE customer = 'customer 7' ORDER BY id LIMIT 10;
