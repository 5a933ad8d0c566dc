"""One step: the column renamed. The version live now still writes customer."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.RenameField("order", "customer", "customer_name"),
    ]
