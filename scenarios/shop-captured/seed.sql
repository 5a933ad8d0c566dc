-- A stand-in for production: a shop whose application connects as the
-- role "app", which finds its tables through its own search_path.
CREATE ROLE app LOGIN;
CREATE SCHEMA shop;
ALTER ROLE app SET search_path = shop, public;

CREATE TABLE shop.customers (
    id    serial PRIMARY KEY,
    name  text NOT NULL
);

CREATE TABLE shop.orders (
    id           serial PRIMARY KEY,
    customer_id  int NOT NULL REFERENCES shop.customers,
    amount       numeric(10, 2) NOT NULL,
    note         text,
    created      timestamptz NOT NULL DEFAULT now()
);

INSERT INTO shop.customers (name)
SELECT 'customer ' || g FROM generate_series(1, 40) g;

INSERT INTO shop.orders (customer_id, amount, note, created)
SELECT 1 + g % 40, g * 1.25, 'n' || g, timestamptz '2026-01-01' + g * interval '1 hour'
FROM generate_series(1, 400) g;

GRANT USAGE ON SCHEMA shop TO app;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA shop TO app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA shop TO app;
