CREATE TABLE tags (
    repository_id  bigint NOT NULL REFERENCES repositories,
    name           text   NOT NULL,
    PRIMARY KEY (repository_id, name)
);
