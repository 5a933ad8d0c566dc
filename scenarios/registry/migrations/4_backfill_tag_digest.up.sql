-- A data fix that guards itself the way real projects do: by asking the
-- tool's own table where the schema stands. Under golang-migrate this
-- migration runs with schema_migrations at 4, dirty.
DO $$
BEGIN
    IF (SELECT version FROM schema_migrations) < 4 THEN
        RAISE EXCEPTION 'schema_migrations is at %, expected 4', (SELECT version FROM schema_migrations);
    END IF;
END
$$;

UPDATE tags SET digest = 'sha256:' || md5(repository_id || ':' || name) WHERE digest IS NULL;
