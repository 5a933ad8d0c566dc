-- Production as it is: Alembic's revision a1 applied, and its orders.
CREATE TABLE alembic_version (
    version_num varchar(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer varchar(100) NOT NULL,
    amount integer NOT NULL
);
INSERT INTO alembic_version VALUES ('a1');
INSERT INTO orders (customer, amount) SELECT 'customer ' || (i % 50), i * 3 FROM generate_series(1, 20000) i;
