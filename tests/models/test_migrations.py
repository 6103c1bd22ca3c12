"""Migrations go up and down on a database of their own, and match the models."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

import models
from models import migrate
from models.db import is_sqlite, make_engine
from tests.conftest import scratch_database


@pytest.fixture
def scratch_engine(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with scratch_database(database_url, "migrations", tmp_path_factory) as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


class TestMigrations:
    def test_up_down_up(self, scratch_engine: Engine) -> None:
        migrate.upgrade(scratch_engine)
        tables = set(inspect(scratch_engine).get_table_names())
        assert {
            "territories",
            "organisations",
            "statements",
            "calls",
            "consortia",
            "digest_deliveries",
            "api_tokens",
            "audit_events",
        } <= tables
        migrate.downgrade(scratch_engine, "base")
        assert set(inspect(scratch_engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(scratch_engine)
        assert migrate.current_revision(scratch_engine) is not None

    def test_models_do_not_drift_from_migrations(self, scratch_engine: Engine) -> None:
        migrate.upgrade(scratch_engine)
        with scratch_engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, models.Base.metadata)
        assert diff == []

    def test_pgvector_extension_is_created_on_postgres(self, scratch_engine: Engine) -> None:
        if is_sqlite(str(scratch_engine.url)):
            pytest.skip(reason="pgvector is a PostgreSQL extension")
        migrate.upgrade(scratch_engine)
        with scratch_engine.connect() as conn:
            version = conn.scalar(
                text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            )
        assert version is not None

    def test_hnsw_indexes_move_to_half_precision_and_back(self, scratch_engine: Engine) -> None:
        """0003 replaces the full-precision HNSW indexes of existing spaces."""
        if is_sqlite(str(scratch_engine.url)):
            pytest.skip(reason="HNSW indexes are PostgreSQL's")
        migrate.upgrade(scratch_engine, "0002")
        vector = "[" + ",".join(["0.5"] * 4) + "]"
        # The name an earlier version gave the index of this space and role.
        old_name = "ix_embeddings_hnsw_" + hashlib.sha256(b"espace:test|need").hexdigest()[:12]
        with scratch_engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO embeddings (model, role, content_hash, dimension, vector, "
                    "created_at) VALUES ('espace:test', 'need', 'h', 4, CAST(:v AS vector), now())"
                ),
                {"v": vector},
            )
            conn.execute(
                text(
                    f"CREATE INDEX {old_name} ON embeddings USING hnsw "
                    "((vector::vector(4)) vector_cosine_ops) "
                    "WHERE model = 'espace\\:test' AND role = 'need'"
                )
            )

        def names() -> set[str]:
            with scratch_engine.connect() as conn:
                return set(
                    conn.scalars(
                        text(
                            "SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings' "
                            "AND indexname LIKE 'ix_embeddings_hnsw%'"
                        )
                    )
                )

        migrate.upgrade(scratch_engine)
        half = names()
        assert len(half) == 1
        assert half.pop().startswith("ix_embeddings_hnsw_half_")
        migrate.downgrade(scratch_engine, "0002")
        assert names() == {old_name}


class TestArchivedAt:
    def test_archived_at_is_added_and_removed(self, scratch_engine: Engine) -> None:
        def columns() -> set[str]:
            return {c["name"] for c in inspect(scratch_engine).get_columns("organisations")}

        migrate.upgrade(scratch_engine, "0005")
        assert "archived_at" not in columns()
        migrate.upgrade(scratch_engine, "0006_archived_at")
        assert "archived_at" in columns()
        migrate.downgrade(scratch_engine, "0005")
        assert "archived_at" not in columns()
        assert {"name", "siren", "profile_hash"} <= columns()


class TestNameKey:
    def test_existing_names_get_their_key_and_come_composed(self, scratch_engine: Engine) -> None:
        migrate.upgrade(scratch_engine, "0007")
        decomposed = unicodedata.normalize("NFD", "Coopérative Hlm L’Établi")
        with scratch_engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO organisations (name, kind, created_at, updated_at) "
                    "VALUES (:name, 'landlord', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"name": decomposed},
            )
        migrate.upgrade(scratch_engine, "0008_name_key")
        with scratch_engine.connect() as conn:
            name, key = conn.execute(text("SELECT name, name_key FROM organisations")).one()
        assert name == unicodedata.normalize("NFC", decomposed)
        assert key == "cooperative hlm l etabli"
        migrate.downgrade(scratch_engine, "0007")
        columns = {c["name"] for c in inspect(scratch_engine).get_columns("organisations")}
        assert "name_key" not in columns
        assert "former_communes" not in inspect(scratch_engine).get_table_names()


class TestCallsCatalogue:
    def test_a_funder_becomes_the_funders_list_and_keys_are_derived(
        self, scratch_engine: Engine
    ) -> None:
        migrate.upgrade(scratch_engine, "0012_consortium_outcome")
        with scratch_engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO calls (title, funder, description, eligible_kinds, "
                    "eligible_legal_forms, themes, source, status, created_at, updated_at) "
                    "VALUES (:title, 'Région Sud', 'Des potagers', '[]', '[\"OPH\"]', "
                    "'[\"Jardins partagés\"]', 'demo', 'open', CURRENT_TIMESTAMP, "
                    "CURRENT_TIMESTAMP)"
                ),
                {"title": unicodedata.normalize("NFD", "Appel « Jardins partagés »")},
            )
        migrate.upgrade(scratch_engine, "0013_calls_catalogue")
        with scratch_engine.connect() as conn:
            row = conn.execute(
                text("SELECT title, funders, title_key, search_key, facets, nationwide FROM calls")
            ).one()
        title, funders, title_key, search_key, facets, nationwide = row
        assert title == "Appel « Jardins partagés »"
        assert (json.loads(funders) if isinstance(funders, str) else funders) == ["Région Sud"]
        assert title_key == "appel jardins partages"
        assert search_key == "appel jardins partages region sud des potagers jardins partages"
        assert facets == "|theme:jardins partages|form:oph|"
        assert not nationwide
        migrate.downgrade(scratch_engine, "0012_consortium_outcome")
        with scratch_engine.connect() as conn:
            assert conn.scalar(text("SELECT funder FROM calls")) == "Région Sud"
        assert "call_changes" not in inspect(scratch_engine).get_table_names()
