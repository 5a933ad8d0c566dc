INSERT INTO b (iv) SELECT ----

--5


--M
CONFLICT (kd) a ON ----

--5


--M
CONFLICT (kd) DO NOTHING;