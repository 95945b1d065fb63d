"""Initial schema: api keys, items, append-only decisions, delivery outbox, posts.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from storage.types import JSONColumn, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_str = AutoString


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", _str(length=100), nullable=False, unique=True),
        sa.Column("key_digest", _str(length=64), nullable=False, unique=True),
        sa.Column("signing_secret", _str(length=100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "items",
        sa.Column("id", _str(length=40), primary_key=True),
        sa.Column("integrator_id", sa.Integer(), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("route", _str(length=100), nullable=False),
        sa.Column("kind", _str(length=32), nullable=False),
        sa.Column("title", _str(length=300), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("callback_url", _str(length=2000), nullable=True),
        sa.Column("requested_by", _str(length=200), nullable=True),
        sa.Column("content", JSONColumn, nullable=False),
        sa.Column("final_content", JSONColumn, nullable=True),
        sa.Column("metadata", JSONColumn, nullable=False),
        sa.Column("state", _str(length=16), nullable=False),
        sa.Column("outcome", _str(length=16), nullable=True),
        sa.Column("release_state", _str(length=16), nullable=False),
        sa.Column("release_error", _str(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", _str(length=255), nullable=True),
        sa.Column("request_hash", _str(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("integrator_id", "idempotency_key", name="uq_items_idempotency"),
    )
    op.create_index("ix_items_integrator_id_id", "items", ["integrator_id", "id"])
    op.create_index("ix_items_state_route", "items", ["state", "route"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", _str(length=40), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("action", _str(length=16), nullable=False),
        sa.Column("surface", _str(length=16), nullable=False),
        sa.Column("actor_id", _str(length=200), nullable=False),
        sa.Column("actor_name", _str(length=200), nullable=False),
        sa.Column("content_before", JSONColumn, nullable=True),
        sa.Column("content_after", JSONColumn, nullable=True),
        sa.Column("reason_code", _str(length=200), nullable=True),
        sa.Column("reason_text", _str(), nullable=True),
        sa.Column("decisive", sa.Boolean(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("since_posted_seconds", sa.Float(), nullable=False),
    )
    op.create_index("ix_decisions_item_id", "decisions", ["item_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", _str(length=40), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("purpose", _str(length=16), nullable=False),
        sa.Column("target_type", _str(length=16), nullable=False),
        sa.Column("url", _str(length=2000), nullable=False),
        sa.Column("idempotency_key", _str(length=200), nullable=False, unique=True),
        sa.Column("payload", JSONColumn, nullable=False),
        sa.Column("state", _str(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", _str(), nullable=True),
        sa.Column("receipt", _str(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_deliveries_item_id", "deliveries", ["item_id"])
    op.create_index("ix_deliveries_due", "deliveries", ["state", "next_attempt_at"])
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", _str(length=40), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("surface", _str(length=16), nullable=False),
        sa.Column("channel", _str(length=200), nullable=True),
        sa.Column("ref", JSONColumn, nullable=False),
        sa.Column("posted_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_posts_item_id", "posts", ["item_id"])
    _forbid_decision_rewrites()


def _forbid_decision_rewrites() -> None:
    """Decisions are append-only: the database itself refuses UPDATE and DELETE."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER decisions_no_{verb.lower()} BEFORE {verb} ON decisions "
                "BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION signoff_decisions_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'decisions are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions "
            "FOR EACH ROW EXECUTE FUNCTION signoff_decisions_append_only()"
        )


def downgrade() -> None:
    for table in ("posts", "deliveries", "decisions", "items", "api_keys"):
        op.drop_table(table)
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS signoff_decisions_append_only()")
