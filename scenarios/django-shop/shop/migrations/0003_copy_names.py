"""The backfill, outside a transaction (atomic = False): each row is saved,
and committed, on its own, so the live version's writes never queue behind
it. In the same migration as the AddField (Django wraps a migration in one
transaction on PostgreSQL), the ADD COLUMN's ACCESS EXCLUSIVE lock would
be held until the last row is copied: twinstage shows that lock and how
long it was held."""
from django.db import migrations


def copy_names(apps, schema_editor):
    Order = apps.get_model("shop", "Order")
    for order in Order.objects.filter(customer_name__isnull=True):
        order.customer_name = order.customer
        order.save(update_fields=["customer_name"])


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("shop", "0002_customer_name")]
    operations = [
        migrations.RunPython(copy_names, migrations.RunPython.noop),
    ]
