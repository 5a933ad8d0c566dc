-- A stand-in for production: the table that was misspelled years ago.
CREATE TABLE inovices (
    id          bigserial PRIMARY KEY,
    customer    text           NOT NULL,
    amount      numeric(12, 2) NOT NULL CHECK (amount >= 0),
    created_at  timestamptz    NOT NULL DEFAULT now()
);

INSERT INTO inovices (customer, amount, created_at)
SELECT (ARRAY['acme', 'globex', 'initech'])[1 + i % 3],
       (i * 7 % 500) + 0.99,
       timestamptz '2024-01-01' + i * interval '1 hour'
FROM generate_series(1, 3000) AS i;
