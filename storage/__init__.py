"""Persistence: SQLModel tables, repository functions and Alembic migrations.

Repository functions take an ``AsyncSession`` and keyword-only arguments; they never
commit, so the caller decides what one transaction holds.
"""
