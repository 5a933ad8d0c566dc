"""one step: customer renamed to customer_name

Revision ID: b2
Revises: a1
"""
from alembic import op

revision = "b2"
down_revision = "a1"
branch_labels = None
depends_on = None


def upgrade():
    op.alter_column("orders", "customer", new_column_name="customer_name")


def downgrade():
    op.alter_column("orders", "customer_name", new_column_name="customer")
