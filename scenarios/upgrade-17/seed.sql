-- A shop on PostgreSQL 15: orders, their lines, a role for the application.
CREATE ROLE shop_app LOGIN;
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    country text NOT NULL
);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    placed_at timestamptz NOT NULL,
    total numeric(12, 2) NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id);
INSERT INTO customers (name, country)
SELECT 'customer ' || g, (ARRAY['fr', 'de', 'es', 'it'])[1 + g % 4] FROM generate_series(1, 2000) g;
INSERT INTO orders (customer_id, placed_at, total)
SELECT 1 + g % 2000, timestamptz '2026-01-01' + g * interval '1 minute', (g % 500) + 0.99
FROM generate_series(1, 20000) g;
GRANT SELECT, INSERT, UPDATE ON customers, orders TO shop_app;
GRANT SELECT ON pg_stat_bgwriter TO shop_app;
-- set once on production with ALTER SYSTEM, and forgotten there
ALTER SYSTEM SET vacuum_defer_cleanup_age = 0;
