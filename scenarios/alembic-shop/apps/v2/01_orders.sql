-- What v2, the next version, sends: it reads customer_name.
-- @name orders of a customer, by the new column
-- @expect columns id, customer_name, amount
SELECT id, customer_name, amount FROM orders WHERE customer_name = 'customer 7' ORDER BY id LIMIT 10;
