-- Show the customer on each order without a join: the name, copied.
ALTER TABLE shop.orders ADD COLUMN name text;
