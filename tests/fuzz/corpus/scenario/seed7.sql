-- The statements v1 ran in production, captured by twinstage capture
-- from the server log pg.csv on 2026-12-02T03:13:12Z: 5 statements, 2000 calls.
-- Each runs on the production clone and on the dev side: "same" must give
-- the same rows on both, "prepares" must be accepted (prepared and planned).
-- The values after each params annotation are production's: review them
-- before committing this file, or capture again with --no-params.

-- fingerprint 3f50469027da66f8
-- @name INSERT INTO orders (customer_id, amount) VALUES ($1, 9.99) R...
-- @role app
-- @calls 400
-- @expect same
-- @params '6'
-- @params '29'
-- @params '35'
INSERT INTO orders (customer_id, amount) VALUES ($1, 9.99) RETURNING id;

-- fingerprint 633185697bf95b4e
-- @name UPDATE orders SET note = 'seen' WHERE id = $1
-- @role app
-- @calls 400
-- @expect same
-- @params '164'
-- @params '15'
-- @params '12'
UPDATE orders SET note = 'seen' WHERE id = $1;

-- fingerprint 63853cff9a3f7dd9
-- @name SELECT o.id, o.amount, name FROM orders o JOIN customers c O...
-- @role app
-- @calls 400
-- @expect same
-- @params '6'
-- @params '29'
-- @params '35'
SELECT o.id, o.amount, name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.id = $1 ORDER BY o.id;

-- fingerprint 93875ff18e284fce
-- @name SELECT id, amount, note FROM orders WHERE id = $1
-- @role app
-- @calls 400
-- @expect same
-- @params '164'
-- @params '15'
-- @params '12'
SELECT id, amount, note FROM orders WHERE id = $1;

-- fingerprint bcdca3a5f707ef4e
-- @name SELECT count(*), sum(amount) FROM orders WHERE customer_id =...
-- @role app
-- @calls 400
-- @expect same
-- @params '29'
-- @params '6'
-- @params '35'
SELECT count(*), sum(amount) FROM orders WHERE customer_id = $1;
