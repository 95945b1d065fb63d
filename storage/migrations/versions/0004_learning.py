"""The learning loop: prompts, comparisons, gold items, queue reservations, decision
timing, audits and configuration changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from storage.types import JSONColumn, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table copy): the decisions table keeps its append-only triggers.
    op.add_column("items", sa.Column("prompt", JSONColumn, nullable=True))
    op.add_column("items", sa.Column("ab_swapped", sa.Boolean(), nullable=True))
    op.add_column("items", sa.Column("gold_expected", AutoString(length=16), nullable=True))
    op.add_column("items", sa.Column("reserved_by", AutoString(length=200), nullable=True))
    op.add_column("items", sa.Column("reserved_until", UTCDateTime(), nullable=True))
    op.add_column("decisions", sa.Column("opened_seconds", sa.Float(), nullable=True))
    op.add_column(
        "decisions",
        sa.Column("rubber_stamp", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("decisions", sa.Column("choice", AutoString(length=16), nullable=True))
    op.create_table(
        "audits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", AutoString(length=40), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("route", AutoString(length=100), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("auto_outcome", AutoString(length=16), nullable=False),
        sa.Column("verdict", AutoString(length=16), nullable=True),
        sa.Column("corrected", JSONColumn, nullable=True),
        sa.Column("surface", AutoString(length=16), nullable=True),
        sa.Column("actor_id", AutoString(length=200), nullable=True),
        sa.Column("actor_name", AutoString(length=200), nullable=True),
        sa.Column("posted_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("ref", JSONColumn, nullable=True),
    )
    op.create_index("ix_audits_item_id", "audits", ["item_id"])
    op.create_index("ix_audits_route_decided", "audits", ["route", "decided_at"])
    op.create_table(
        "config_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("route", AutoString(length=100), nullable=False),
        sa.Column("key", AutoString(length=100), nullable=False),
        sa.Column("old_value", JSONColumn, nullable=True),
        sa.Column("new_value", JSONColumn, nullable=True),
        sa.Column("reason", AutoString(), nullable=False),
        sa.Column("actor", AutoString(length=200), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_config_changes_route_key", "config_changes", ["route", "key", "id"])
    op.create_index("ix_items_reserved", "items", ["state", "route", "reserved_until"])
    op.create_index("ix_decisions_at", "decisions", ["at"])
    op.create_index("ix_decisions_actor_at", "decisions", ["surface", "actor_id", "at"])
    op.create_table(
        "item_opens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", AutoString(length=40), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("reviewer", AutoString(length=200), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("item_id", "reviewer", name="uq_item_opens_item_reviewer"),
    )


def downgrade() -> None:
    op.drop_table("item_opens")
    op.drop_index("ix_decisions_actor_at", "decisions")
    op.drop_index("ix_decisions_at", "decisions")
    op.drop_index("ix_items_reserved", "items")
    op.drop_table("config_changes")
    op.drop_table("audits")
    for column in ("choice", "rubber_stamp", "opened_seconds"):
        op.drop_column("decisions", column)
    for column in ("reserved_until", "reserved_by", "gold_expected", "ab_swapped", "prompt"):
        op.drop_column("items", column)
