#!/usr/bin/env bash
# Run every check: lint, types, then the whole test suite once on SQLite and once on
# PostgreSQL (with pgvector); each suite ends with its 15 slowest tests. Extra arguments
# go to pytest.
#   scripts/test.sh
#   MAILLAGE_TEST_POSTGRES_URL=postgresql+psycopg://user@host/db scripts/test.sh
#   MAILLAGE_TEST_SERIAL=1 scripts/test.sh     # one database after the other, output live
set -uo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
PG_URL="${MAILLAGE_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/maillage_test}"
log() { printf '\n[test] %s\n' "$*"; }

log "ruff"
"$PY" -m ruff check . || exit 1
log "mypy (strict on matcher/ and models/)"
"$PY" -m mypy matcher models api || exit 1

status=0
# One suite: pytest's status, with 5 ("no test collected") a failure unless a filter was
# asked for.
run_suite() {
    local name=$1
    shift
    MAILLAGE_TEST_ARTIFACTS="${MAILLAGE_TEST_ARTIFACTS_ROOT:-test-artifacts}/$name" \
        "$@" "$PY" -m pytest --durations=15 "${PYTEST_ARGS[@]}"
    local rc=$?
    if [ $rc -eq 5 ]; then
        if [ ${#PYTEST_ARGS[@]} -eq 0 ]; then
            echo "[test] pytest collected no test on $name: failing."
            rc=1
        else
            rc=0
        fi
    fi
    return $rc
}

PYTEST_ARGS=("$@")
if ! "$PY" - "$PG_URL" <<'PYEOF'
import sys
import psycopg
url = sys.argv[1].replace("postgresql+psycopg://", "postgresql://")
try:
    psycopg.connect(url, connect_timeout=5).close()
except Exception as exc:
    print(f"PostgreSQL unreachable at {url}: {exc}\nRun scripts/install-postgres.sh first.")
    sys.exit(1)
PYEOF
then
    exit 1
fi

if [ "${MAILLAGE_TEST_SERIAL:-0}" = 1 ]; then
    log "pytest on sqlite"
    run_suite sqlite env -u MAILLAGE_TEST_DATABASE_URL || status=1
    log "pytest on postgresql"
    run_suite postgresql env MAILLAGE_TEST_DATABASE_URL="$PG_URL" || status=1
else
    # The two suites side by side (each is mostly one busy core): their output is shown
    # whole, one after the other, when both have finished.
    logs=$(mktemp -d)
    log "pytest on sqlite and on postgresql, side by side (MAILLAGE_TEST_SERIAL=1: one after the other)"
    run_suite sqlite env -u MAILLAGE_TEST_DATABASE_URL >"$logs/sqlite.log" 2>&1 &
    sqlite_pid=$!
    run_suite postgresql env MAILLAGE_TEST_DATABASE_URL="$PG_URL" >"$logs/postgresql.log" 2>&1 &
    postgresql_pid=$!
    sqlite_status=0
    postgresql_status=0
    wait $sqlite_pid || sqlite_status=1
    wait $postgresql_pid || postgresql_status=1
    [ $sqlite_status -eq 0 ] && [ $postgresql_status -eq 0 ] || status=1
    log "pytest on sqlite"
    cat "$logs/sqlite.log"
    log "pytest on postgresql"
    cat "$logs/postgresql.log"
    [ $sqlite_status -eq 0 ] || log "sqlite suite FAILED"
    [ $postgresql_status -eq 0 ] || log "postgresql suite FAILED"
    rm -rf "$logs"
fi

if [ $status -eq 0 ]; then log "all suites passed"; else log "FAILED"; fi
exit $status
