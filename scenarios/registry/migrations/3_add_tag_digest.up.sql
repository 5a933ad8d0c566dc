-- Expand: a nullable column, so v1 (which does not know it) keeps inserting.
ALTER TABLE tags ADD COLUMN digest text;
