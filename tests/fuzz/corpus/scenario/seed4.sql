-- @name push a tag
-- @expect rows 1
INSERT INTO tags (repository_id, name) VALUES (1, 'v999') RETURNING name;

-- @name list the tags of a repository
-- @expect rows 20
SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = 'library/app2';
