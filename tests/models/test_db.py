"""Engine set-up: how SQLite transactions begin."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from models.db import for_writes, make_engine


@pytest.fixture
def sqlite_file(tmp_path: Path) -> tuple[Engine, Path]:
    path = tmp_path / "begin.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    return engine, path


def _other_writer_can_start(path: Path) -> bool:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return False
    finally:
        other.close()


class TestSqliteBegin:
    def test_a_writer_holds_the_write_lock_from_its_first_statement(
        self, sqlite_file: tuple[Engine, Path]
    ) -> None:
        """Even a read: a deferred transaction that read first could not write once another
        connection had committed (SQLite refuses at once, whatever the busy timeout)."""
        engine, path = sqlite_file
        with for_writes(engine).begin() as conn:
            assert conn.scalar(text("SELECT count(*) FROM t")) == 0
            assert not _other_writer_can_start(path)
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert _other_writer_can_start(path)

    def test_a_reader_takes_no_lock(self, sqlite_file: tuple[Engine, Path]) -> None:
        engine, path = sqlite_file
        with engine.begin() as conn:
            assert conn.scalar(text("SELECT count(*) FROM t")) == 0
            assert _other_writer_can_start(path)
