"""calls catalogue: several funders, aid types, nationwide perimeter, derived keys, changes

Revision ID: 0013_calls_catalogue
Revises: 0012_consortium_outcome
Create Date: 2026-12-02 10:00:00

- `calls.funders` (a JSON list) replaces `calls.funder` (its value becomes the list's one
  item); `calls.aid_types` (JSON list); `calls.nationwide` (the perimeter is "France").
- Keys derived from a call on every write (`models.call`): `title_key` (the title folded,
  byte-order collation on PostgreSQL as organisations' name_key), `search_key` (the folded
  words that `q` searches), `facets` (themes and eligibility); filled here for existing rows.
- `call_changes`: what each update changed in a call, field by field.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from matcher.text import name_key

revision: str = "0013_calls_catalogue"
down_revision: str | None = "0012_consortium_outcome"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TITLE_KEY_TYPE = sa.String(300).with_variant(sa.String(300, collation="C"), "postgresql")


def _list(value: Any) -> list[Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return list(value or [])


def _facets(themes: list[Any], kinds: list[Any], forms: list[Any]) -> str:
    """`models.call.call_facets` as of this revision."""
    parts = [f"theme:{name_key(t)}" for t in themes]
    parts += [f"kind:{k}" for k in kinds] + [f"form:{name_key(f)}" for f in forms]
    if not kinds and not forms:
        parts.append("all")
    return "|" + "|".join(parts) + "|"


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("funders", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("aid_types", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("nationwide", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("title_key", TITLE_KEY_TYPE, nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("search_key", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("facets", sa.Text(), nullable=False, server_default=""))
    calls = sa.table(
        "calls",
        sa.column("id", sa.Integer),
        sa.column("title", sa.String),
        sa.column("funder", sa.String),
        sa.column("funders", sa.JSON),
        sa.column("description", sa.Text),
        sa.column("themes", sa.JSON),
        sa.column("eligible_kinds", sa.JSON),
        sa.column("eligible_legal_forms", sa.JSON),
        sa.column("title_key", sa.String),
        sa.column("search_key", sa.Text),
        sa.column("facets", sa.Text),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            calls.c.id,
            calls.c.title,
            calls.c.funder,
            calls.c.description,
            calls.c.themes,
            calls.c.eligible_kinds,
            calls.c.eligible_legal_forms,
        )
    ).all()
    for id_, title, funder, description, themes, kinds, forms in rows:
        title = unicodedata.normalize("NFC", title)
        funders = [funder] if funder else []
        themes = _list(themes)
        words = [title, *funders, description or "", *themes]
        connection.execute(
            calls.update()
            .where(calls.c.id == id_)
            .values(
                title=title,
                funders=funders,
                title_key=name_key(title)[:300],
                search_key=" ".join(name_key(w) for w in words if w),
                facets=_facets(themes, _list(kinds), _list(forms)),
            )
        )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("funder")
        for column in ("funders", "aid_types", "nationwide", "title_key", "search_key", "facets"):
            batch_op.alter_column(column, server_default=None)
        batch_op.create_index("ix_calls_title_key_id", ["title_key", "id"], unique=False)

    op.create_table(
        "call_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("field", sa.String(length=40), nullable=False),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.Column("new", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_call_changes_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_changes")),
    )
    op.create_index("ix_call_changes_call_id_changed_at", "call_changes", ["call_id", "changed_at"])


def downgrade() -> None:
    op.drop_index("ix_call_changes_call_id_changed_at", table_name="call_changes")
    op.drop_table("call_changes")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("funder", sa.String(length=300), nullable=True))
    calls = sa.table(
        "calls",
        sa.column("id", sa.Integer),
        sa.column("funder", sa.String),
        sa.column("funders", sa.JSON),
    )
    connection = op.get_bind()
    for id_, funders in connection.execute(sa.select(calls.c.id, calls.c.funders)).all():
        funders = _list(funders)
        if funders:
            connection.execute(
                calls.update().where(calls.c.id == id_).values(funder=", ".join(funders)[:300])
            )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_title_key_id")
        for column in ("facets", "search_key", "title_key", "nationwide", "aid_types", "funders"):
            batch_op.drop_column(column)
