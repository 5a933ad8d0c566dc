"""Expand first: a new column beside the old one. The live version goes on
writing customer; the next one reads customer_name. Adding a nullable
column is a change of the catalog only: its ACCESS EXCLUSIVE lock is held
for milliseconds, because the backfill is a migration of its own (0003)."""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.AddField("order", "customer_name", models.CharField(max_length=100, null=True)),
    ]
