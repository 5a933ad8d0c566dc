-- Production as golang-migrate left it at version 2.
CREATE TABLE repositories (
    id    bigserial PRIMARY KEY,
    name  text NOT NULL UNIQUE
);
CREATE TABLE tags (
    repository_id  bigint NOT NULL REFERENCES repositories,
    name           text   NOT NULL,
    PRIMARY KEY (repository_id, name)
);
CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
INSERT INTO schema_migrations VALUES (2, false);

INSERT INTO repositories (name) SELECT 'library/app' || i FROM generate_series(1, 50) AS i;
INSERT INTO tags SELECT r.id, 'v' || t FROM repositories r, generate_series(1, 20) AS t;
