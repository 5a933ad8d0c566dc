-- The way back from V2, without blocking writes.
DROP INDEX CONCURRENTLY invoices_customer_idx;
