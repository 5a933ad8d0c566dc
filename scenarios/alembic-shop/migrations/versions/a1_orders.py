"""orders

Revision ID: a1
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "a1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("customer", sa.String(100), nullable=False),
        sa.Column("amount", sa.Integer, nullable=False),
    )


def downgrade():
    op.drop_table("orders")
