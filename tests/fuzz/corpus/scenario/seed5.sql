-- @name push a tag with its digest
-- @expect rows 1
INSERT INTO tags (repository_id, name, digest) VALUES (1, 'v999', 'sha256:abc') RETURNING digest;

-- @name every tag has a digest after the backfill
-- @expect rows 0
SELECT 1 FROM tags WHERE digest IS NULL;
