-- Built without blocking writes: twinstage runs this file outside a
-- transaction, because the parser says CONCURRENTLY cannot run in one.
CREATE INDEX CONCURRENTLY invoices_customer_idx ON invoices (customer);
