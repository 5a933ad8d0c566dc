-- The release that goes out with the upgrade: an optional note on orders.
ALTER TABLE orders ADD COLUMN note text;
