-- Production as it is: shop.0001_initial applied by Django, and its orders.
CREATE TABLE django_migrations (
    id serial PRIMARY KEY,
    app varchar(255) NOT NULL,
    name varchar(255) NOT NULL,
    applied timestamp with time zone NOT NULL
);
CREATE TABLE shop_order (
    id bigserial PRIMARY KEY,
    customer varchar(100) NOT NULL,
    amount integer NOT NULL
);
INSERT INTO django_migrations (app, name, applied) VALUES ('shop', '0001_initial', now() - interval '30 days');
INSERT INTO shop_order (customer, amount)
SELECT 'customer ' || (i % 50), i * 3 FROM generate_series(1, 2000) i;
