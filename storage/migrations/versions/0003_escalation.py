"""Escalation chains: the next step of each item and when it is due, claimed step
runs, job runs for the daily digests, and cards still to be posted.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from storage.types import JSONColumn, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("next_step", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("step_due_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("post_due_at", UTCDateTime(), nullable=True))
    op.create_index("ix_items_step_due", "items", ["state", "step_due_at", "id"])
    op.create_index("ix_items_post_due", "items", ["state", "post_due_at", "id"])
    op.create_table(
        "step_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", AutoString(length=40), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("route", AutoString(length=100), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("action", AutoString(length=16), nullable=False),
        sa.Column("state", AutoString(length=16), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("done_posts", JSONColumn, nullable=False),
        sa.Column("detail", AutoString(), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("item_id", "step", name="uq_step_runs_item_step"),
    )
    op.create_index("ix_step_runs_state_claimed", "step_runs", ["state", "claimed_until"])
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job", AutoString(length=200), nullable=False),
        sa.Column("slot", AutoString(length=100), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("job", "slot", name="uq_job_runs_job_slot"),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
    op.drop_index("ix_step_runs_state_claimed", "step_runs")
    op.drop_table("step_runs")
    op.drop_index("ix_items_post_due", "items")
    op.drop_index("ix_items_step_due", "items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("post_due_at")
        batch.drop_column("step_due_at")
        batch.drop_column("next_step")
