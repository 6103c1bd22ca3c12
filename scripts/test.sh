#!/usr/bin/env bash
# Run every check: lint, types, then the whole test suite once on SQLite and once on
# PostgreSQL (with pgvector). Extra arguments go to pytest.
#   scripts/test.sh
#   MAILLAGE_TEST_POSTGRES_URL=postgresql+psycopg://user@host/db scripts/test.sh
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
run_suite() {
    local name=$1
    shift
    log "pytest on $name"
    "$@" "$PY" -m pytest "${PYTEST_ARGS[@]}"
    local rc=$?
    if [ $rc -eq 5 ]; then
        # pytest's 5 is "no test collected": a broken suite, unless a filter was asked for.
        if [ ${#PYTEST_ARGS[@]} -eq 0 ]; then
            log "pytest collected no test on $name: failing."
            rc=1
        else
            rc=0
        fi
    fi
    [ $rc -eq 0 ] || status=1
    return 0
}

PYTEST_ARGS=("$@")
run_suite sqlite env -u MAILLAGE_TEST_DATABASE_URL
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
    status=1
else
    run_suite postgresql env MAILLAGE_TEST_DATABASE_URL="$PG_URL"
fi

if [ $status -eq 0 ]; then log "all suites passed"; else log "FAILED"; fi
exit $status
