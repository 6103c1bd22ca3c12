"""organisation name key, former communes, referential versions

Revision ID: 0008_name_key
Revises: 0007
Create Date: 2026-12-01 09:00:00

- `organisations.name_key`: the name folded (accents, case and apostrophe style aside),
  what `q` searches and `sort=name` orders by on both databases; filled here for existing
  rows (their names brought to Unicode NFC on the way), kept by the ORM afterwards.
  Byte-order collation on PostgreSQL, as SQLite compares.
- `former_communes`: communes déléguées, associées and merged communes, and the current
  commune each is part of (filled by `maillage territories load`).
- `referential_versions`: which revision of a shipped referential the database holds;
  none yet, so the next `territories load --if-empty` (or the demo) refreshes it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from matcher.text import name_key

revision: str = "0008_name_key"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME_KEY_TYPE = sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_key", NAME_KEY_TYPE, nullable=False, server_default=""))
    organisations = sa.table(
        "organisations",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("name_key", sa.String),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(organisations.c.id, organisations.c.name)).all()
    for id_, name in rows:
        composed = unicodedata.normalize("NFC", name)
        connection.execute(
            organisations.update()
            .where(organisations.c.id == id_)
            .values(name=composed, name_key=name_key(composed))
        )
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.alter_column("name_key", server_default=None)
        batch_op.create_index("ix_organisations_name_key_id", ["name_key", "id"], unique=False)

    op.create_table(
        "former_communes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=5), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("search_name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("territory_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territories.id"],
            name=op.f("fk_former_communes_territory_id_territories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_former_communes")),
    )
    op.create_index("ix_former_communes_code", "former_communes", ["code"], unique=False)
    op.create_index(
        "ix_former_communes_search_name", "former_communes", ["search_name"], unique=False
    )
    op.create_index(
        op.f("ix_former_communes_territory_id"), "former_communes", ["territory_id"], unique=False
    )
    op.create_table(
        "referential_versions",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_referential_versions")),
    )


def downgrade() -> None:
    op.drop_table("referential_versions")
    op.drop_index(op.f("ix_former_communes_territory_id"), table_name="former_communes")
    op.drop_index("ix_former_communes_search_name", table_name="former_communes")
    op.drop_index("ix_former_communes_code", table_name="former_communes")
    op.drop_table("former_communes")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_index("ix_organisations_name_key_id")
        batch_op.drop_column("name_key")
