-- The way back from V1 (Flyway undo): v1 never used this table.
DROP TABLE invoices;
