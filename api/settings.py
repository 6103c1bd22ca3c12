"""Process-wide settings, read from MAILLAGE_* environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "maillage"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILLAGE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Folder of the embedded SQLite database and local caches.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means the embedded SQLite file in data_dir. "
        "Use postgresql+psycopg://user@host/db for PostgreSQL.",
    )
    fixtures_dir: Path = Field(default=REPO_ROOT / "fixtures")
    host: str = "127.0.0.1"
    port: int = 8000
    sql_echo: bool = False

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'maillage.sqlite3'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
