#!/usr/bin/env bash
# Starts and stops a throwaway InfluxDB 1.x server (Debian's influxd) for
# tests, everything in one directory:
#
#   scripts/influxdb-test.sh start DIR HTTP_PORT RPC_PORT [--auth] [--https CERT KEY]
#                                  [--max-body BYTES]
#   scripts/influxdb-test.sh stop DIR
#
# start writes DIR/influxdb.conf ([meta] dir, [data] dir and wal-dir under
# DIR, the HTTP API on 127.0.0.1:HTTP_PORT, the RPC/backup service on
# 127.0.0.1:RPC_PORT, reporting, the _internal store and every other
# listener off), starts influxd in the background (its output in
# DIR/influxd.log, its pid in DIR/influxd.pid) and waits until /ping
# answers 204; it fails, printing the log, when that takes longer than
# INFLUXDB_TEST_TIMEOUT seconds (default 15) or influxd exits. Starting
# again on the same DIR keeps the data written before.
#   --auth           auth-enabled = true (no users exist: every write is 401)
#   --https CERT KEY serve HTTPS with that PEM certificate and key
#   --max-body BYTES [http] max-body-size (default 25000000; 413 above it)
# stop sends SIGTERM, waits for the exit (SIGKILL after 10 s) and removes
# the pid file; it is a no-op when nothing runs. Data stays in DIR.
set -euo pipefail
trap 'echo "influxdb-test: line $LINENO: a command failed (exit $?)" >&2' ERR

die()
{
    echo "influxdb-test: $*" >&2
    exit 1
}

# ping PORT HTTPS: true when GET /ping answers 204.
ping_ok()
{
    local port=$1 https=$2 status
    if [[ "$https" == 1 ]]; then
        status=$(printf 'GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' |
            timeout 2 openssl s_client -quiet -connect "127.0.0.1:$port" 2>/dev/null |
            head -n 1) || return 1
    else
        { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
        printf 'GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
        IFS= read -r -t 2 status <&3 || status=
        exec 3<&-
    fi
    [[ "$status" == "HTTP/1."?" 204"* ]]
}

# alive PID [any]: true while PID has not exited (a zombie left for a
# parent that does not reap counts as exited) and is an influxd; with
# "any", whatever it runs (just after the fork it is still this script).
alive()
{
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    if [[ "${2:-}" == any ]]; then
        [[ "$stat" != *") Z "* ]]
    else
        [[ "$stat" == *"(influxd) "[!Z]* ]]
    fi
}

running_pid()
{
    local dir=$1 pid
    [[ -f "$dir/influxd.pid" ]] || return 1
    pid=$(cat "$dir/influxd.pid")
    [[ -n "$pid" ]] && alive "$pid" || return 1
    echo "$pid"
}

cmd_start()
{
    (($# >= 3)) || die "usage: start DIR HTTP_PORT RPC_PORT [--auth] [--https CERT KEY] [--max-body BYTES]"
    local dir=$1 http_port=$2 rpc_port=$3
    shift 3
    local auth=false https=0 cert="" key="" max_body=25000000
    while (($# > 0)); do
        case "$1" in
        --auth)
            auth=true
            shift
            ;;
        --https)
            (($# >= 3)) || die "--https takes CERT and KEY"
            https=1
            cert=$2
            key=$3
            shift 3
            ;;
        --max-body)
            (($# >= 2)) || die "--max-body takes BYTES"
            max_body=$2
            shift 2
            ;;
        *) die "unknown option '$1'" ;;
        esac
    done
    command -v influxd >/dev/null || die "influxd is not installed (Debian package influxdb)"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if pid=$(running_pid "$dir"); then
        die "influxd already runs in $dir (pid $pid)"
    fi
    cat >"$dir/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc_port"

[meta]
  dir = "$dir/meta"
  logging-enabled = false

[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  trace-logging-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:$http_port"
  auth-enabled = $auth
  log-enabled = false
  https-enabled = $([[ $https == 1 ]] && echo true || echo false)
  https-certificate = "$cert"
  https-private-key = "$key"
  max-body-size = $max_body

[ifql]
  enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true
EOF
    : >"$dir/influxd.log"
    influxd -config "$dir/influxdb.conf" >>"$dir/influxd.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/influxd.pid"
    local limit=$((${INFLUXDB_TEST_TIMEOUT:-15} * 10)) i
    for ((i = 0; i < limit; i++)); do
        if ! alive "$pid" any; then
            rm -f "$dir/influxd.pid"
            cat "$dir/influxd.log" >&2
            die "influxd exited during start"
        fi
        if ping_ok "$http_port" "$https"; then
            return 0
        fi
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/influxd.pid"
    cat "$dir/influxd.log" >&2
    die "influxd did not answer /ping on port $http_port within ${INFLUXDB_TEST_TIMEOUT:-15} s"
}

cmd_stop()
{
    (($# == 1)) || die "usage: stop DIR"
    local dir=$1 pid i
    if ! pid=$(running_pid "$dir"); then
        rm -f "$dir/influxd.pid"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || break
        sleep 0.05
    done
    if alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        while alive "$pid"; do sleep 0.05; done
    fi
    rm -f "$dir/influxd.pid"
}

case "${1:-}" in
start)
    shift
    cmd_start "$@"
    ;;
stop)
    shift
    cmd_stop "$@"
    ;;
*)
    sed -n '2,21s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac
