-- Show the customer on each order without a join: the name, copied,
-- under a name no query of v1 already means something else by.
ALTER TABLE shop.orders ADD COLUMN customer_name text;
