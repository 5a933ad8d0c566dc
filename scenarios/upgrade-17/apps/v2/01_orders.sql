-- The next version: orders with their note.

-- @name orders of a customer, with notes
-- @expect columns id,note
SELECT id, placed_at, total, note FROM orders WHERE customer_id = 42 ORDER BY placed_at;

-- @name place an order with a note
-- @expect rows 1
INSERT INTO orders (customer_id, placed_at, total, note) VALUES (42, now(), 10.00, 'gift') RETURNING id;
