CREATE TABLE repositories (
    id    bigserial PRIMARY KEY,
    name  text NOT NULL UNIQUE
);
