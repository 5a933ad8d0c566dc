INSERT INTO b (iv) SELECT a ON  




--õ
--5


--

--5


--M
CONFLICT (id) DO NOTHING;