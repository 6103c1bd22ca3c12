#!/usr/bin/env bash
# scripts/install-postgres.sh — make sure a PostgreSQL server with pgvector is
# installed, running and reachable on 127.0.0.1:5432, with the test databases.
#
# Used by CI (.ci/run) and by the README's PostgreSQL section. Debian 12
# (bookworm) is the target; it must run as root (or with sudo available).
# Idempotent: when everything is already in place, a run only checks (no apt).
#
# Steps:
#   1. Install the `postgresql` package if no server is installed; start the
#      cluster listening on port 5432 if it is down (no systemd needed).
#   2. Make sure `postgres` can connect over TCP from 127.0.0.1 without a
#      password. If it cannot, a `host all all 127.0.0.1/32 trust` rule is put
#      at the top of pg_hba.conf and the server reloaded. That lets any local
#      user connect as any role from 127.0.0.1 without a password: acceptable
#      on a throw-away CI / dev machine only, never on a shared or prod host.
#   3. If pgvector is missing from the server's extension directory, build it
#      from the Debian trixie source package (bookworm ships no pgvector):
#      a temporary deb-src entry for trixie (URIs and Signed-By copied at run
#      time from the machine's own Debian apt sources), postgresql-server-dev-N
#      pinned to the running server's version, `apt-get source pgvector`,
#      make && make install. The trixie entry is removed again by a trap (also
#      on failure) and the apt lists refreshed, so nothing else comes from
#      trixie. See shared notes "pgvector.md".
#   4. Create the databases maillage_test and test if missing (owner postgres)
#      and run CREATE EXTENSION IF NOT EXISTS vector in each.
#
# Environment overrides (all optional):
#   PG_PORT                 port of the cluster to use (default 5432)
#   PGVECTOR_SRC_URIS       apt URI(s) to fetch the trixie source from, when
#                           they cannot be read from the apt configuration
#   PGVECTOR_SRC_SIGNED_BY  keyring for that URI (default: Debian archive keyring)
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT="${PG_PORT:-5432}"
TEST_DBS=(maillage_test test)
SRC_SUITE=trixie
SRC_ENTRY=/etc/apt/sources.list.d/maillage-pgvector-src-trixie.sources
DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources
DEBIAN_LIST=/etc/apt/sources.list
DEFAULT_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

export DEBIAN_FRONTEND=noninteractive

log() { printf '[install-postgres] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "must run as root (or have sudo)"
    SUDO=(sudo -E)
fi
as_root() { "${SUDO[@]}" "$@"; }
as_postgres() { as_root runuser -u postgres -- "$@"; }

# psql as postgres over TCP, never prompting for a password.
pgq() {
    env -u PGPASSWORD -u PGSERVICE psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -w -X -q \
        -v ON_ERROR_STOP=1 "$@"
}

apt_update() { as_root apt-get update -q; }

# A run killed with SIGKILL could have left the trixie entry behind: drop it.
if [ -e "$SRC_ENTRY" ]; then
    log "removing stale $SRC_ENTRY left by an interrupted run"
    as_root rm -f "$SRC_ENTRY"
    apt_update
fi

# --------------------------------------------------------------------------
# 1. Server installed and running
# --------------------------------------------------------------------------
server_installed() {
    command -v pg_ctlcluster >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

if ! server_installed; then
    log "no PostgreSQL server installed: installing the distribution's postgresql"
    apt_update
    as_root apt-get install -y -q postgresql
    server_installed || die "postgresql installed but no server binary found"
fi

# Cluster to use: the one configured for $PG_PORT, else "main" of the newest
# installed major version (created if missing).
CLUSTER_LINE="$(pg_lsclusters --no-header 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print; exit }')"
if [ -n "$CLUSTER_LINE" ]; then
    read -r PG_MAJOR PG_CLUSTER _ PG_STATUS _ <<<"$CLUSTER_LINE"
else
    PG_MAJOR="$(for d in /usr/lib/postgresql/*/bin/postgres; do basename "$(dirname "$(dirname "$d")")"; done | sort -V | tail -n1)"
    PG_CLUSTER=main
    if pg_lsclusters --no-header 2>/dev/null | awk -v v="$PG_MAJOR" '$1 == v && $2 == "main" { f = 1 } END { exit !f }'; then
        die "cluster $PG_MAJOR/main exists but not on port $PG_PORT; fix its port or set PG_PORT"
    fi
    log "creating cluster $PG_MAJOR/$PG_CLUSTER on port $PG_PORT"
    as_root pg_createcluster --port "$PG_PORT" "$PG_MAJOR" "$PG_CLUSTER"
    PG_STATUS=down
fi
PG_BINDIR="/usr/lib/postgresql/$PG_MAJOR/bin"
PG_CONFIG="$PG_BINDIR/pg_config"
[ -x "$PG_CONFIG" ] || die "$PG_CONFIG not found (postgresql-client-$PG_MAJOR missing?)"

start_cluster() {
    log "starting cluster $PG_MAJOR/$PG_CLUSTER"
    # systemd is not PID 1 on the CI machines: talk to pg_ctl directly.
    as_root pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$PG_CLUSTER" start
}
cluster_status() {
    pg_lsclusters --no-header | awk -v v="$PG_MAJOR" -v c="$PG_CLUSTER" '$1 == v && $2 == c { print $4 }'
}
wait_ready() {
    local _
    for _ in $(seq 1 30); do
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && return 0
        sleep 1
    done
    die "server $PG_MAJOR/$PG_CLUSTER not accepting connections on $PG_HOST:$PG_PORT"
}

case "$PG_STATUS" in
    online*) ;;
    *) start_cluster ;;
esac
wait_ready

# --------------------------------------------------------------------------
# 2. Password-less TCP access for postgres from 127.0.0.1
# --------------------------------------------------------------------------
if ! pgq -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
    HBA_FILE="$(as_postgres psql -p "$PG_PORT" -X -Atc 'SHOW hba_file' 2>/dev/null || true)"
    HBA_FILE="${HBA_FILE:-/etc/postgresql/$PG_MAJOR/$PG_CLUSTER/pg_hba.conf}"
    log "no password-less TCP access for postgres: adding a 127.0.0.1 trust rule to $HBA_FILE"
    as_root cp -p "$HBA_FILE" "$HBA_FILE.bak-install-postgres"
    # Rules are matched top-down, so the trust rule goes first. CI/dev only.
    as_root sed -i '1i # Added by scripts/install-postgres.sh (CI/dev machine only): password-less TCP from 127.0.0.1\nhost    all             all             127.0.0.1/32            trust' "$HBA_FILE"
    as_root pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$PG_CLUSTER" reload
    sleep 1
    pgq -d postgres -Atc 'SELECT 1' >/dev/null || die "still cannot connect as postgres to $PG_HOST:$PG_PORT"
fi

# --------------------------------------------------------------------------
# 3. pgvector
# --------------------------------------------------------------------------
EXT_DIR="$("$PG_CONFIG" --sharedir)/extension"
PKGLIB_DIR="$("$PG_CONFIG" --pkglibdir)"

# Print a deb822 stanza's URIs and Signed-By fields (continuation lines kept,
# so an inline key block also works) for the main Debian archive of this
# release: the stanza whose Suites contain the bare codename.
deb822_fields() {
    local file="$1" codename="$2"
    awk -v cn="$codename" '
        function flush() {
            if (is_main && uris != "" && !done) { printf "%s", uris; if (sb != "") printf "%s", sb; done = 1 }
            uris = ""; sb = ""; is_main = 0; field = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        /^[ \t]/ { if (field == "uris") uris = uris $0 "\n"; else if (field == "sb") sb = sb $0 "\n"; next }
        {
            name = tolower($1); field = ""
            if (name == "uris:") { field = "uris"; uris = $0 "\n" }
            else if (name == "signed-by:") { field = "sb"; sb = $0 "\n" }
            else if (name == "types:") { if ($0 !~ /[ \t]deb([ \t]|$)/ && $0 !~ /[ \t]deb-src([ \t]|$)/) is_main = -1 }
            else if (name == "suites:") { for (i = 2; i <= NF; i++) if ($i == cn && is_main == 0) is_main = 1 }
        }
        END { flush() }
    ' "$file"
}

# The same from a one-line-style sources.list: "URIs: ..." and "Signed-By: ...".
list_fields() {
    local file="$1" codename="$2"
    awk -v cn="$codename" '
        /^[ \t]*deb(-src)?[ \t]/ {
            opts = ""; i = 2
            if ($2 ~ /^\[/) { while (i <= NF) { opts = opts " " $i; if ($i ~ /\]$/) { i++; break } i++ } }
            uri = $i; suite = $(i + 1)
            if (suite != cn) next
            sb = ""
            if (match(opts, /signed-by=[^] \t]+/)) sb = substr(opts, RSTART + 10, RLENGTH - 10)
            print "URIs: " uri
            if (sb != "") print "Signed-By: " sb
            exit
        }
    ' "$file"
}

write_src_entry() {
    local codename fields=""
    # shellcheck disable=SC1091
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
    if [ -n "${PGVECTOR_SRC_URIS:-}" ]; then
        fields="URIs: $PGVECTOR_SRC_URIS"$'\n'
    elif [ -r "$DEBIAN_SOURCES" ]; then
        fields="$(deb822_fields "$DEBIAN_SOURCES" "$codename")"
    fi
    if [ -z "$fields" ] && [ -r "$DEBIAN_LIST" ]; then
        fields="$(list_fields "$DEBIAN_LIST" "$codename")"
    fi
    if [ -z "$fields" ]; then
        # Any other deb822 file naming the release (e.g. a mirror's own file).
        local f
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -r "$f" ] || continue
            fields="$(deb822_fields "$f" "$codename")"
            [ -n "$fields" ] && break
        done
    fi
    [ -n "$fields" ] || die "cannot find the Debian archive URI for '$codename' in the apt sources; set PGVECTOR_SRC_URIS"
    if ! grep -qi '^signed-by:' <<<"$fields"; then
        local kr="${PGVECTOR_SRC_SIGNED_BY:-$DEFAULT_KEYRING}"
        [ -r "$kr" ] && fields="$fields"$'\n'"Signed-By: $kr"
    fi
    {
        echo "# Temporary entry written by scripts/install-postgres.sh to build pgvector;"
        echo "# removed again when the script exits."
        echo "Types: deb-src"
        printf '%s\n' "$fields" | sed '/^$/d'
        echo "Suites: $SRC_SUITE"
        echo "Components: main"
    } | as_root tee "$SRC_ENTRY" >/dev/null
}

BUILD_DIR=""
cleanup() {
    if [ -e "$SRC_ENTRY" ]; then
        log "removing the temporary $SRC_SUITE source entry and refreshing apt lists"
        as_root rm -f "$SRC_ENTRY"
        as_root apt-get update -q >/dev/null 2>&1 || log "WARNING: apt-get update after removing $SRC_ENTRY failed"
    fi
    if [ -n "$BUILD_DIR" ]; then rm -rf "$BUILD_DIR"; fi
}

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]; }

if [ -f "$EXT_DIR/vector.control" ] && compgen -G "$PKGLIB_DIR/vector.so" >/dev/null; then
    log "pgvector already installed in $EXT_DIR"
else
    log "pgvector not found in $EXT_DIR: building it from the Debian $SRC_SUITE source package"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    write_src_entry
    apt_update

    SERVER_PKG="postgresql-$PG_MAJOR"
    DEV_PKG="postgresql-server-dev-$PG_MAJOR"
    SERVER_VERSION_BEFORE="$(pkg_version "$SERVER_PKG")"
    to_install=()
    if ! pkg_installed "$DEV_PKG"; then
        # Pin the headers to the running server so that apt does not pull in a
        # newer minor release of the server itself.
        if [ -n "$SERVER_VERSION_BEFORE" ] &&
            apt-cache madison "$DEV_PKG" | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | grep -qxF "$SERVER_VERSION_BEFORE"; then
            to_install+=("$DEV_PKG=$SERVER_VERSION_BEFORE")
        else
            log "WARNING: $DEV_PKG $SERVER_VERSION_BEFORE is not in the archive; installing the candidate (may upgrade $SERVER_PKG)"
            to_install+=("$DEV_PKG")
        fi
    fi
    for p in make gcc libc6-dev dpkg-dev; do pkg_installed "$p" || to_install+=("$p"); done
    if [ ${#to_install[@]} -gt 0 ]; then
        as_root apt-get install -y -q --no-install-recommends "${to_install[@]}"
    fi

    SERVER_VERSION_AFTER="$(pkg_version "$SERVER_PKG")"
    if [ "$SERVER_VERSION_AFTER" != "$SERVER_VERSION_BEFORE" ]; then
        log "NOTE: $SERVER_PKG was upgraded $SERVER_VERSION_BEFORE -> $SERVER_VERSION_AFTER; restarting the cluster on the new binaries"
        as_root pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$PG_CLUSTER" restart -m fast ||
            as_root pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$PG_CLUSTER" start
    fi
    case "$(cluster_status)" in online*) ;; *) start_cluster ;; esac
    wait_ready

    BUILD_DIR="$(mktemp -d /tmp/pgvector-build.XXXXXX)"
    # Let apt's sandbox user download into it (else apt warns and downloads as root).
    if id _apt >/dev/null 2>&1; then chown _apt "$BUILD_DIR"; else chmod 755 "$BUILD_DIR"; fi
    (
        cd "$BUILD_DIR"
        apt-get source -q pgvector
        src="$(find . -mindepth 1 -maxdepth 1 -type d -name 'pgvector-*' | head -n1)"
        [ -n "$src" ] || die "apt-get source pgvector produced no source tree"
        cd "$src"
        make -j"$(nproc)" PG_CONFIG="$PG_CONFIG" with_llvm=no
        as_root make install PG_CONFIG="$PG_CONFIG" with_llvm=no
    )
    [ -f "$EXT_DIR/vector.control" ] || die "make install did not put vector.control in $EXT_DIR"

    cleanup
    trap - EXIT INT TERM
    [ ! -e "$SRC_ENTRY" ] || die "could not remove $SRC_ENTRY"
fi

# --------------------------------------------------------------------------
# 4. Test databases with the vector extension
# --------------------------------------------------------------------------
for db in "${TEST_DBS[@]}"; do
    exists="$(pgq -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$db'")"
    if [ "$exists" != 1 ]; then
        log "creating database $db"
        pgq -d postgres -c "CREATE DATABASE \"$db\" OWNER postgres"
    fi
    pgq -d "$db" -c 'SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS vector'
done

server_version="$(pgq -d postgres -Atc 'SHOW server_version')"
vector_version="$(pgq -d "${TEST_DBS[0]}" -Atc "SELECT extversion FROM pg_extension WHERE extname = 'vector'")"
echo "PostgreSQL $server_version ($PG_MAJOR/$PG_CLUSTER) on $PG_HOST:$PG_PORT, pgvector $vector_version, databases: ${TEST_DBS[*]}"
