-- Expand: the correctly spelled table, next to the old one.
-- v2 writes both; v1 does not know this table exists.
CREATE TABLE invoices (
    id          bigint         PRIMARY KEY,
    customer    text           NOT NULL,
    amount      numeric(12, 2) NOT NULL CHECK (amount >= 0),
    created_at  timestamptz    NOT NULL DEFAULT now()
);
