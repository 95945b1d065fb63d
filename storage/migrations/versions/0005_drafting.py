"""LLM drafting: tasks, the model-call ledger, rejected revisions of items, judged confidence and
reviewer aids.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from storage.types import JSONColumn, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ITEM_COLUMNS = (
    "llm_cost",
    "llm_output_tokens",
    "llm_input_tokens",
    "aid",
    "confidence_note",
    "confidence_source",
    "redraft_until",
    "revisions",
    "revision",
    "task_id",
)


def upgrade() -> None:
    # Plain ADD COLUMN (no table copy): the decisions table keeps its append-only triggers.
    op.add_column("items", sa.Column("task_id", AutoString(length=40), nullable=True))
    op.add_column("items", sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("items", sa.Column("revisions", JSONColumn, nullable=True))
    op.add_column("items", sa.Column("redraft_until", UTCDateTime(), nullable=True))
    op.add_column("items", sa.Column("confidence_source", AutoString(length=16), nullable=True))
    op.add_column("items", sa.Column("confidence_note", AutoString(), nullable=True))
    op.add_column("items", sa.Column("aid", JSONColumn, nullable=True))
    for column in ("llm_input_tokens", "llm_output_tokens"):
        op.add_column("items", sa.Column(column, sa.Integer(), nullable=False, server_default="0"))
    op.add_column("items", sa.Column("llm_cost", sa.Float(), nullable=False, server_default="0"))
    op.create_index("ix_items_redraft", "items", ["state", "redraft_until"])
    op.create_table(
        "tasks",
        sa.Column("id", AutoString(length=40), primary_key=True),
        sa.Column("integrator_id", sa.Integer(), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("route", AutoString(length=100), nullable=False),
        sa.Column("kind", AutoString(length=32), nullable=False),
        sa.Column("title", AutoString(length=300), nullable=False),
        sa.Column("instructions", AutoString(), nullable=False),
        sa.Column("context", JSONColumn, nullable=True),
        sa.Column("callback_url", AutoString(length=2000), nullable=True),
        sa.Column("metadata", JSONColumn, nullable=False),
        sa.Column("requested_by", AutoString(length=200), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("state", AutoString(length=16), nullable=False),
        sa.Column("item_id", AutoString(length=40), nullable=True),
        sa.Column("error", AutoString(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("idempotency_key", AutoString(length=255), nullable=True),
        sa.Column("request_hash", AutoString(length=64), nullable=True),
        sa.Column("callback_state", AutoString(length=16), nullable=False),
        sa.Column("callback_attempts", sa.Integer(), nullable=False),
        sa.Column("callback_due_at", UTCDateTime(), nullable=True),
        sa.Column("callback_error", AutoString(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("integrator_id", "idempotency_key", name="uq_tasks_idempotency"),
    )
    op.create_index("ix_tasks_state_lease", "tasks", ["state", "lease_until"])
    op.create_index("ix_tasks_callback_due", "tasks", ["callback_state", "callback_due_at"])
    op.create_table(
        "llm_calls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("route", AutoString(length=100), nullable=False),
        sa.Column("item_id", AutoString(length=40), nullable=True),
        sa.Column("task_id", AutoString(length=40), nullable=True),
        sa.Column("purpose", AutoString(length=16), nullable=False),
        sa.Column("model", AutoString(length=200), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_llm_calls_route_at", "llm_calls", ["route", "at"])
    op.create_index("ix_llm_calls_item_id", "llm_calls", ["item_id"])


def downgrade() -> None:
    op.drop_index("ix_llm_calls_item_id", "llm_calls")
    op.drop_index("ix_llm_calls_route_at", "llm_calls")
    op.drop_table("llm_calls")
    op.drop_index("ix_tasks_callback_due", "tasks")
    op.drop_index("ix_tasks_state_lease", "tasks")
    op.drop_table("tasks")
    op.drop_index("ix_items_redraft", "items")
    for column in _ITEM_COLUMNS:
        op.drop_column("items", column)
