"""The example shop's settings: the database is the one libpq's variables name
(twinstage sets PGHOST, PGPORT, PGDATABASE and PGUSER for the side it migrates)."""
import os

SECRET_KEY = "example-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PGDATABASE", "shop"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
    }
}
# the release to rehearse: the expand-first one (shop.migrations), or the
# one that renames in a single step (shop.migrations_rename)
MIGRATION_MODULES = {"shop": os.environ.get("SHOP_MIGRATIONS", "shop.migrations")}
