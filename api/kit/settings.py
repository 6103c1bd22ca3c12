"""Process-wide settings, read from MAILLAGE_* environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from models.db import PoolLimits

REPO_ROOT = Path(__file__).resolve().parents[2]


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
    model: str = Field(
        # matcher.encoders.DEFAULT_MODEL (a test holds them equal; importing it here would
        # load numpy and scikit-learn with the settings).
        default="e5+use@0.7",
        description="Dense encoder: multilingual-e5-small (e5), use-multilingual-v3 (use), "
        "all-MiniLM-L6-v2 (minilm), a local sentence-transformers model folder, or a blend "
        "of models in one space, 'e5+use@0.7' weighing e5 0.7 and USE 0.3. Never fetched "
        "from a hub. Each model, blend and weight is an embedding space of its own: after a "
        "change, run `maillage reindex`.",
    )
    thesaurus: str = Field(
        default="thesaurus/habitat-social-fr.json",
        description="Domain thesaurus, relative to fixtures_dir (or absolute); empty disables it.",
    )
    dense_weight: float = Field(default=0.5, ge=0, le=1, description="Dense share of the blend.")
    profile_weight: float = Field(
        default=0.75, ge=0, le=5, description="Weight of the whole-profile similarity in search."
    )
    words_weight: float = Field(
        default=0.4,
        ge=0,
        le=5,
        description="Weight of the word-stem similarity to whole profiles in search.",
    )
    search_min_score: float = Field(
        default=0.01, ge=0, le=1, description="Search results scoring below this are left out."
    )
    search_relative_cut: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Search results scoring below this share of the best one are left out.",
    )
    search_min_dense_z: float = Field(
        default=0.0,
        ge=-10,
        le=5,
        description="Search leaves out organisations none of whose competencies, nor whose "
        "whole profile, is semantically closer to the query than a random pair of statements "
        "by this many standard deviations (dense z-score): they only share words with it. "
        "-10 turns the cut off in practice.",
    )
    pg_top_k: int = Field(
        default=100,
        ge=10,
        le=1000,
        description="Statements fetched per query vector from pgvector.",
    )
    partner_top_k: int = Field(
        default=40,
        ge=5,
        le=1000,
        description="On a large network, statements scored exactly per statement of the "
        "organisation when suggesting partners (the rest by top-k).",
    )
    partner_strong_reason: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="A partner suggestion whose best reason is answered below this strength "
        "(0–1) is shown after every suggestion with a stronger one.",
    )
    partner_reciprocity: float = Field(
        default=0.1,
        ge=0,
        le=5,
        description="How much reciprocity lifts a partner (z units at most): near-ties only.",
    )
    index_refit_share: float = Field(
        default=0.01,
        gt=0,
        le=1,
        description="Writes update the in-memory index by deltas; the lexical idf, the word "
        "weights, the calibration (and the SQLite first-pass projection) are fitted again "
        "once the statements and organisations changed since the last fit pass this share "
        "of the network.",
    )
    index_background_refit_rows: int = Field(
        default=20_000,
        ge=0,
        description="From this many statements, the refit runs in a background thread: the "
        "delta is served at once with the statistics of the last fit, and the refitted index "
        "replaces it when ready.",
    )
    index_delta_max_share: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Changes touching more than this share of the organisations (and more "
        "than 50) since the index's version rebuild it from the whole database.",
    )
    spelling: bool = Field(
        default=True,
        description="Search corrects the misspelt words of a query (neither French nor in "
        "the network's statements) towards the network's words: see matcher.spelling.",
    )
    pg_partners_in_memory: bool = Field(
        default=True,
        description="On PostgreSQL, partner suggestions read the network's vectors held in "
        "memory with the index (as on SQLite: about 4 bytes × dimension per statement, "
        "360 MB at 100,000 statements of 896 dimensions) instead of a pgvector top-k per "
        "statement of the organisation; search and calls still ask pgvector.",
    )
    pg_exact_below: int = Field(
        default=2000,
        ge=0,
        description="When a request compares at most this many (query, statement) pairs, "
        "PostgreSQL scores them all exactly instead of walking the HNSW index.",
    )
    import_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Largest file POST /api/v1/imports/organisations accepts, in bytes "
        "(refused with 413 before it is read whole).",
    )
    # Load: a request holds at most one database connection at a time, and only while one
    # of the worker threads runs it; so as many connections as threads means that no
    # thread waits for a connection held by a request waiting for a thread.
    worker_threads: int = Field(
        default=40,
        ge=1,
        le=1000,
        description="Threads that run the routes and their database work (anyio's thread "
        "limiter); requests beyond wait their turn without holding a connection.",
    )
    encoding_threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Texts encoded by the dense model at once (each encoding already uses "
        "every core); 0: as many as the machine has cores. Requests beyond wait their turn.",
    )
    db_pool_size: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="Database connections kept open per server process; 0: as many as "
        "worker_threads. PostgreSQL's max_connections must leave room for every process.",
    )
    db_max_overflow: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="Connections opened beyond db_pool_size under load (a request commits "
        "after its thread is handed back), closed when returned.",
    )
    db_pool_timeout: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="Seconds a request waits for a free connection before answering 503 "
        "with Retry-After.",
    )
    db_lock_timeout: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Seconds a request waits for a lock (SQLite's write lock, a PostgreSQL "
        "row or table lock) before answering 503 with Retry-After.",
    )
    max_requests_in_flight: int = Field(
        default=200,
        ge=1,
        le=100_000,
        description="API requests a server process serves at once; more wait for a place "
        "(admission_timeout) and are then refused with 503 and Retry-After.",
    )
    admission_timeout: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description="Seconds a request waits for a place when max_requests_in_flight are "
        "being served, before its 503.",
    )
    retry_after: int = Field(
        default=2,
        ge=1,
        le=3600,
        description="Seconds a client is told to wait (Retry-After) after a 503 for overload.",
    )
    idempotency_hours: float = Field(
        default=24,
        gt=0,
        le=24 * 30,
        description="How long the answer to a POST sent with an Idempotency-Key is kept: "
        "the same key and body within it get the same answer, without a second creation.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body any other route accepts, in bytes (JSON bodies; "
        "refused with 413 before it is read whole).",
    )
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=8 * 1024,
        le=1024 * 1024,
        description="Largest request line and headers `maillage serve` accepts, in bytes "
        "(larger ones are refused by the HTTP server before the application sees them).",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = Field(
        default="",
        description="Address of the service as people reach it, for the links in e-mails "
        "(https://maillage.exemple.fr); empty means http://host:port.",
    )
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Key signing the links sent by e-mail (confirmation, unsubscribe, digest "
        "view) and the web sessions. Empty: a random key is created once in data_dir/secret_key "
        "(set the same key on every server process of one deployment).",
    )
    # Mail: with no SMTP host (the embedded demo), messages are written to outbox_dir and
    # their links to the console instead of being sent.
    smtp_host: str = Field(default="", description="SMTP server; empty writes to the outbox.")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls (port 587), tls (implicit TLS, port 465) or none (a local relay).",
    )
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout: float = Field(default=30, gt=0, le=600, description="Seconds per SMTP step.")
    mail_from: str = Field(
        default="Maillage <maillage@localhost>", description="From: of every message sent."
    )
    outbox_dir: Path | None = Field(
        default=None, description="Where messages go without SMTP; empty means data_dir/outbox."
    )
    # Abuse: limits in the `limits` package's notation ("20/minute", "1000/hour"), kept in
    # each server process's memory (a restart forgets them; several processes each count).
    rate_limits: bool = Field(
        default=True, description="Rate-limit authentication and costly routes."
    )
    rate_auth_failures: str = Field(
        default="20/minute",
        description="Failed authentications allowed per client address and per token prefix.",
    )
    rate_costly_per_token: str = Field(
        default="120/minute", description="Searches and suggestions per token."
    )
    rate_costly_per_address: str = Field(
        default="300/minute", description="Searches and suggestions per client address."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Web origins allowed to call the API from a browser (CORS); none by default. "
        "In the environment, a JSON list: MAILLAGE_CORS_ORIGINS='[\"https://exemple.fr\"]'.",
    )
    sql_echo: bool = False

    @property
    def thesaurus_path(self) -> Path | None:
        if not self.thesaurus:
            return None
        path = Path(self.thesaurus)
        return path if path.is_absolute() else self.fixtures_dir / path

    @property
    def pool_limits(self) -> PoolLimits:
        """The server's connection pool and lock waits (`models.db.PoolLimits`)."""
        from models.db import PoolLimits

        return PoolLimits(
            size=self.db_pool_size or self.worker_threads,
            overflow=self.db_max_overflow,
            checkout_timeout=self.db_pool_timeout,
            lock_timeout=self.db_lock_timeout,
        )

    @property
    def base_url(self) -> str:
        """The service's address in links, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def outbox(self) -> Path:
        return self.outbox_dir or self.data_dir / "outbox"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'maillage.sqlite3'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
