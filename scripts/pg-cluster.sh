#!/bin/sh
# pg-cluster.sh: a throwaway PostgreSQL cluster for tests and benchmarks.
#
#   pg-cluster.sh start  DIR PORT   create (first time) and start a cluster in
#                                   DIR, listening on 127.0.0.1:PORT; prints
#                                   its libpq conninfo on stdout
#   pg-cluster.sh stop   DIR        stop it (fast shutdown: clients are cut off)
#   pg-cluster.sh status DIR        exit 0 when it runs, 3 when it does not
#   pg-cluster.sh conninfo DIR      print the conninfo of the cluster in DIR
#   pg-cluster.sh destroy DIR       stop it and remove DIR
#
# Every command is idempotent: start on a running cluster prints its conninfo
# and exits 0 (exit 1 if it runs on another port); stop on a stopped or
# missing one exits 0. A cluster left behind by a killed test (stale
# postmaster.pid) starts again.
#
# The conninfo is "host=127.0.0.1 port=PORT user=postgres dbname=postgres";
# authentication is trust, fsync is off: for tests only, never for data.
#
# Layout of DIR (created if missing; it must be a path every parent of which
# the postgres user can traverse, such as a mkdtemp dir under /tmp):
#   DIR/data      PGDATA            DIR/server.log   the server's log
#   DIR/port      the port          DIR/sockdir      the unix socket's dir
# The unix socket is DIR/sock unless that path is too long for a socket
# (108 bytes), then a short dir under /tmp (removed by stop).
#
# Runs as root (the server refuses to: initdb and pg_ctl then run as the
# postgres user through runuser, and DIR is given to postgres) or as any
# other user (they run as that user). Binaries: $PG_BINDIR, else the newest
# /usr/lib/postgresql/*/bin, else pg_config --bindir, else PATH.
# Extra server settings: $PG_CLUSTER_OPTS (e.g. "-c max_connections=200").
set -eu

usage() {
    sed -n '2,12p' "$0" >&2
    exit 2
}

die() {
    echo "pg-cluster: $*" >&2
    exit 1
}

find_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then
        echo "$PG_BINDIR"
        return
    fi
    # the glob sorts 10 before 9: pick the highest major number
    best=""
    bestv=0
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/pg_ctl" ] || continue
        v=$(basename "$(dirname "$d")")
        case "$v" in *[!0-9]*) continue ;; esac
        if [ "$v" -gt "$bestv" ]; then
            bestv=$v
            best=$d
        fi
    done
    if [ -n "$best" ]; then
        echo "$best"
    elif command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/pg_ctl" ]; then
        pg_config --bindir
    elif command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
    else
        die "no PostgreSQL server binaries found (install postgresql, or set PG_BINDIR)"
    fi
}

# Runs a server binary as the user that owns the cluster.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

abspath() {
    case "$1" in
    /*) echo "$1" ;;
    *) echo "$(pwd)/$1" ;;
    esac
}

conninfo() {
    echo "host=127.0.0.1 port=$1 user=postgres dbname=postgres"
}

# The postmaster's pid when it is alive, from DIR/data/postmaster.pid. A
# killed postmaster may linger as a zombie (in containers whose init is slow
# to reap): that counts as dead.
postmaster_pid() {
    pid=$(head -n 1 "$DIR/data/postmaster.pid" 2>/dev/null || true)
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$pid/stat" 2>/dev/null || true)
    case "$state" in '' | Z | X) return 1 ;; esac
    echo "$pid"
}

is_running() {
    [ -f "$DIR/data/PG_VERSION" ] || return 1
    postmaster_pid >/dev/null || return 1
    as_pg "$BINDIR/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

cmd_start() {
    PORT=$1
    case "$PORT" in '' | *[!0-9]*) die "port '$PORT' is not a number" ;; esac
    [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "port $PORT out of range"
    mkdir -p "$DIR"
    if is_running; then
        old=$(cat "$DIR/port" 2>/dev/null || echo "")
        [ "$old" = "$PORT" ] || die "a cluster runs in $DIR on port '$old', not $PORT"
        conninfo "$PORT"
        return 0
    fi
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "no postgres user (install postgresql)"
        chown postgres "$DIR"
        chmod 0700 "$DIR"
        # every parent must be traversable by postgres
        if ! runuser -u postgres -- test -x "$DIR" 2>/dev/null; then
            die "the postgres user cannot reach $DIR (a parent directory is not traversable)"
        fi
    fi
    # lock files left by a server that was killed
    rm -f "$DIR/data/postmaster.pid"
    oldsock=$(cat "$DIR/sockdir" 2>/dev/null || echo "")
    if [ -n "$oldsock" ]; then
        rm -f "$oldsock"/.s.PGSQL.*
        case "$oldsock" in /tmp/pgsock.*) rm -rf "$oldsock" ;; esac
    fi
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        rm -rf "$DIR/data"
        as_pg "$BINDIR/initdb" -D "$DIR/data" -A trust -U postgres --no-sync -E UTF8 \
            --locale=C >"$DIR/initdb.log" 2>&1 ||
            {
                cat "$DIR/initdb.log" >&2
                die "initdb failed"
            }
    fi
    sock="$DIR/sock"
    if [ ${#sock} -gt 90 ]; then
        # .s.PGSQL.<port> must fit a sockaddr_un (107 bytes)
        sock=$(mktemp -d /tmp/pgsock.XXXXXX)
    else
        mkdir -p "$sock"
    fi
    [ "$(id -u)" = 0 ] && chown postgres "$sock"
    echo "$sock" >"$DIR/sockdir"
    echo "$PORT" >"$DIR/port"
    [ "$(id -u)" = 0 ] && chown postgres "$DIR/sockdir" "$DIR/port"
    : >"$DIR/server.log"
    [ "$(id -u)" = 0 ] && chown postgres "$DIR/server.log"
    if ! as_pg "$BINDIR/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-k $sock -h 127.0.0.1 -p $PORT -c fsync=off -c full_page_writes=off ${PG_CLUSTER_OPTS:-}" \
        start >"$DIR/pg_ctl.log" 2>&1; then
        cat "$DIR/pg_ctl.log" >&2
        tail -n 20 "$DIR/server.log" >&2 || true
        die "the server did not start on port $PORT"
    fi
    conninfo "$PORT"
}

cmd_stop() {
    [ -d "$DIR" ] || return 0
    if is_running; then
        if ! as_pg "$BINDIR/pg_ctl" -D "$DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1; then
            if is_running; then
                die "the server in $DIR did not stop"
            fi
        fi
    fi
    sock=$(cat "$DIR/sockdir" 2>/dev/null || echo "")
    case "$sock" in /tmp/pgsock.*) rm -rf "$sock" ;; esac
    return 0
}

[ $# -ge 2 ] || usage
CMD=$1
DIR=$(abspath "$2")
BINDIR=$(find_bindir)
case "$CMD" in
start)
    [ $# -eq 3 ] || usage
    cmd_start "$3"
    ;;
stop) cmd_stop ;;
status)
    if is_running; then exit 0; else exit 3; fi
    ;;
conninfo)
    [ -f "$DIR/port" ] || die "no cluster in $DIR"
    conninfo "$(cat "$DIR/port")"
    ;;
destroy)
    cmd_stop
    rm -rf "$DIR"
    ;;
*) usage ;;
esac
