"""expand first: customer_name beside customer, backfilled

Revision ID: b2
Revises: a1
"""
from alembic import op
import sqlalchemy as sa

revision = "b2"
down_revision = "a1"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("orders", sa.Column("customer_name", sa.String(100), nullable=True))
    op.execute("UPDATE orders SET customer_name = customer WHERE customer_name IS NULL")
    op.create_index("orders_customer_name_idx", "orders", ["customer_name"])


def downgrade():
    op.drop_index("orders_customer_name_idx", table_name="orders")
    op.drop_column("orders", "customer_name")
