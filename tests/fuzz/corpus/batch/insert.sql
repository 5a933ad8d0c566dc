INSERT INTO b (id, v) SELECT a.id, a.v FROM a JOIN c ON c.id = a.id WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.id = a.id) ON CONFLICT (id) DO NOTHING;
