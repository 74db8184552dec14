#!/usr/bin/env bash
# Installs what is missing, builds fresco in build/ and runs the telemetry
# stack (fresco-collector, fresco-processor, fresco-publisher) on its
# single-host defaults, then shows `fresco status`.
#
#   scripts/run-stack.sh            run in the foreground until Ctrl-C / SIGTERM
#   scripts/run-stack.sh --detach   start, show status, return (stack keeps running)
#   scripts/run-stack.sh --stop     stop a detached stack
#   scripts/run-stack.sh --status   show `fresco status` of a running stack
#
# Logs go to run/logs/<service>.log, pids to run/<service>.pid. Each service
# reads FRESCO_<SERVICE>_<KEY> from the environment, so e.g.
#   FRESCO_COLLECTOR_LOG_LEVEL=debug scripts/run-stack.sh
# works. FRESCO_STACK_TIMEOUT (seconds, default 20) bounds the wait for the
# services to answer; FRESCO_BUILD_DIR (default build) is the build tree used.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

SERVICES=(collector processor publisher)
# The sockets each service listens on by default: "service key address".
LISTENERS=(
    "collector control tcp://127.0.0.1:7400"
    "collector events tcp://127.0.0.1:7402"
    "processor control tcp://127.0.0.1:7410"
    "processor data_in tcp://127.0.0.1:7411"
    "processor events tcp://127.0.0.1:7412"
    "publisher control tcp://127.0.0.1:7420"
    "publisher data_in tcp://127.0.0.1:7421"
    "publisher events tcp://127.0.0.1:7422"
)
build_dir=${FRESCO_BUILD_DIR:-build}
run_dir=$root/run
log_dir=$run_dir/logs
# Each service keeps its state (tasks, the publisher's spool) under run/
# unless told otherwise.
for svc in collector processor publisher; do
    var="FRESCO_$(printf '%s' "$svc" | tr '[:lower:]' '[:upper:]')_STATE_DIR"
    export "$var=${!var:-$run_dir/state/$svc}"
done
timeout=${FRESCO_STACK_TIMEOUT:-20}

say()
{
    printf 'run-stack: %s\n' "$*"
}

die()
{
    printf 'run-stack: %s\n' "$*" >&2
    exit 1
}

usage()
{
    sed -n '2,17s/^# \{0,1\}//p' "$0"
}

upper()
{
    printf '%s' "$1" | tr '[:lower:]' '[:upper:]'
}

# The address a service will use for key: its environment override, else the default.
address_of()
{
    local svc=$1 key=$2 def=$3 var
    var="FRESCO_$(upper "$svc")_$(upper "$key")"
    printf '%s' "${!var:-$def}"
}

binary_of()
{
    local name=$1 f
    for f in "$build_dir/services/${name#fresco-}/$name" "$build_dir/services/fresco/$name" \
        "$build_dir/bin/$name" "$build_dir/$name"; do
        if [[ -x "$f" && -f "$f" ]]; then
            printf '%s' "$f"
            return 0
        fi
    done
    f=$(find "$build_dir" -type f -name "$name" -perm -u+x 2>/dev/null | head -n 1)
    [[ -n "$f" ]] || return 1
    printf '%s' "$f"
}

pidfile_of()
{
    printf '%s/%s.pid' "$run_dir" "$1"
}

# True when pid exists and has not exited (a zombie has exited).
alive()
{
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z* ]]
}

# The pid recorded for svc, when that process is still alive.
recorded_pid()
{
    local pf pid
    pf=$(pidfile_of "$1")
    [[ -r "$pf" ]] || return 1
    pid=$(<"$pf")
    [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || return 1
    printf '%s' "$pid"
}

# Prints the pid of a running service started by this script, or fails.
# The process must still be fresco-<svc> (pids get reused); comm holds
# at most 15 characters of the name.
running_pid()
{
    local svc=$1 name pid comm
    name=fresco-$svc
    pid=$(recorded_pid "$svc") || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ "$comm" == "${name:0:15}" ]] || return 1
    printf '%s' "$pid"
}

# Points the CLI at the control addresses in use (0.0.0.0 is dialed on loopback).
export_cli_addresses()
{
    local svc var addr
    for svc in "${SERVICES[@]}"; do
        var="FRESCO_CLI_$(upper "$svc")"
        if [[ -z "${!var:-}" ]]; then
            addr=$(address_of "$svc" control "")
            if [[ -n "$addr" ]]; then
                addr=${addr/\/\/0.0.0.0:/\/\/127.0.0.1:}
                addr=${addr/\/\/\*:/\/\/127.0.0.1:}
                export "$var=$addr"
            fi
        fi
    done
}

cli()
{
    local bin
    bin=$(binary_of fresco) || die "no fresco binary in $build_dir/: build it first"
    "$bin" "$@"
}

stop_stack()
{
    local svc pid pids=() names=() i deadline
    for svc in "${SERVICES[@]}"; do
        if pid=$(running_pid "$svc"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("$svc")
        fi
        rm -f "$(pidfile_of "$svc")"
    done
    if ((${#pids[@]} == 0)); then
        say "nothing running"
        return 0
    fi
    say "stopping ${names[*]}"
    deadline=$((SECONDS + 10))
    for i in "${!pids[@]}"; do
        while alive "${pids[$i]}"; do
            if ((SECONDS >= deadline)); then
                say "fresco-${names[$i]} (pid ${pids[$i]}) ignored SIGTERM for 10s: killing it"
                kill -KILL "${pids[$i]}" 2>/dev/null || true
                break
            fi
            sleep 0.1
        done
        # reap it when it is our child (foreground mode); harmless otherwise
        wait "${pids[$i]}" 2>/dev/null || true
    done
    say "stopped"
}

# Refuses to start when a listening port is taken, naming the holder.
check_ports()
{
    local entry svc key def addr port holder busy=0
    for entry in "${LISTENERS[@]}"; do
        read -r svc key def <<<"$entry"
        addr=$(address_of "$svc" "$key" "$def")
        [[ "$addr" =~ ^(tls\+)?tcp[46]?://.*:([0-9]+)$ ]] || continue
        port=${BASH_REMATCH[2]}
        holder=$(ss -Hltnp "sport = :$port" 2>/dev/null || true)
        if [[ -n "$holder" ]]; then
            printf 'run-stack: port %s (%s %s, %s) is already in use:\n  %s\n' \
                "$port" "$svc" "$key" "$addr" "$holder" >&2
            busy=1
        fi
    done
    if ((busy)); then
        die "refusing to start: stop what holds the port(s) above (scripts/run-stack.sh --stop if it is an earlier stack) or move fresco with FRESCO_<SERVICE>_<KEY>=ADDR"
    fi
}

build()
{
    ./scripts/install-deps.sh
    if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
        cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    fi
    local targets=() svc
    for svc in "${SERVICES[@]}"; do
        targets+=(--target "fresco-$svc")
    done
    # the command line's target is fresco_cli (the library owns "fresco")
    cmake --build "$build_dir" -j 2 "${targets[@]}" --target fresco_cli
}

start_stack()
{
    local svc bin pid
    mkdir -p "$log_dir"
    for svc in "${SERVICES[@]}"; do
        bin=$(binary_of "fresco-$svc") || die "fresco-$svc was not built"
        # own session: Ctrl-C reaches only this script, which stops the
        # services in order with SIGTERM
        setsid "$bin" </dev/null >>"$log_dir/$svc.log" 2>&1 &
        pid=$!
        printf '%s\n' "$pid" >"$(pidfile_of "$svc")"
        say "started fresco-$svc (pid $pid, log run/logs/$svc.log)"
    done
}

# Polls `fresco status` until every service answers or the deadline passes.
wait_ready()
{
    local deadline=$((SECONDS + timeout)) svc
    while :; do
        for svc in "${SERVICES[@]}"; do
            if ! recorded_pid "$svc" >/dev/null; then
                say "fresco-$svc exited during startup; last lines of run/logs/$svc.log:" >&2
                tail -n 20 "$log_dir/$svc.log" >&2 || true
                return 1
            fi
        done
        if cli status >/dev/null 2>&1 </dev/null; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            say "the services did not all answer within ${timeout}s:" >&2
            cli status </dev/null >&2 || true
            return 1
        fi
        sleep 0.2
    done
}

any_running()
{
    local svc
    for svc in "${SERVICES[@]}"; do
        if running_pid "$svc" >/dev/null; then
            return 0
        fi
    done
    return 1
}

mode=foreground
case "${1:-}" in
"") ;;
--detach | -d) mode=detach ;;
--stop) mode=stop ;;
--status) mode=status ;;
-h | --help)
    usage
    exit 0
    ;;
*)
    usage >&2
    die "unknown option '$1'"
    ;;
esac
(($# <= 1)) || die "one option at a time"

export_cli_addresses

case "$mode" in
stop)
    stop_stack
    exit 0
    ;;
status)
    cli status
    exit $?
    ;;
esac

if any_running; then
    die "a stack is already running (pids in run/): scripts/run-stack.sh --stop first"
fi

build
check_ports

on_signal()
{
    trap - INT TERM
    echo
    stop_stack
    exit 0
}
trap on_signal INT TERM

start_stack
if ! wait_ready; then
    stop_stack
    exit 1
fi
echo
cli status </dev/null || true
echo

# Show it working: a task that collects the host's load, memory and CPU use
# every second (examples/tasks/host-load.yaml), watched for a few seconds;
# and the same through the processor (tags, anomaly detection) and the
# publisher (JSON lines in /tmp), examples/tasks/host-pipeline.yaml.
demo=examples/tasks/host-load.yaml
if cli task get host-load >/dev/null 2>&1 </dev/null ||
    cli task create -t "$demo" </dev/null >/dev/null; then
    say "task host-load collects every second ($demo); a few of its metrics:"
    timeout -s INT 3.5 "$(binary_of fresco)" task watch host-load </dev/null || true
    echo
fi
pipeline=examples/tasks/host-pipeline.yaml
if cli task get host-pipeline >/dev/null 2>&1 </dev/null ||
    cli task create -t "$pipeline" </dev/null >/dev/null; then
    say "task host-pipeline ($pipeline): tagged by the processor, written by the publisher to /tmp/fresco-host-pipeline.jsonl:"
    timeout -s INT 3.5 "$(binary_of fresco)" task watch host-pipeline --processed </dev/null || true
    echo
    cli pipeline list host-pipeline </dev/null || true
    echo
    say "more: $(binary_of fresco) task list | metric list | pipeline list | spool | task watch host-pipeline --processed"
fi

if [[ "$mode" == detach ]]; then
    say "running in the background; stop with: scripts/run-stack.sh --stop"
    exit 0
fi

say "running; Ctrl-C stops the stack"
while :; do
    # returns when a service exits, or when a trapped signal arrives
    wait -n || true
    for svc in "${SERVICES[@]}"; do
        if ! recorded_pid "$svc" >/dev/null; then
            say "fresco-$svc exited unexpectedly; last lines of run/logs/$svc.log:" >&2
            tail -n 20 "$log_dir/$svc.log" >&2 || true
            stop_stack
            exit 1
        fi
    done
done
