#!/usr/bin/env bash
# A single-node Slurm for fresco's HPC tests, without systemd:
#   scripts/slurm-test.sh start DIR [PROLOG EPILOG]   munged, slurmctld, slurmd; waits for idle
#   scripts/slurm-test.sh stop DIR                    stops what start started
# DIR holds slurm.conf, state, spool and logs. Slurm's commands find the
# cluster through SLURM_CONF=DIR/slurm.conf. Needs root (slurmd runs jobs
# as their users). PROLOG/EPILOG, when given, become Prolog=/Epilog=.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z $cmd || -z $dir ]]; then
    echo "usage: scripts/slurm-test.sh start|stop DIR [PROLOG EPILOG]" >&2
    exit 2
fi

stop_pidfile()
{
    local f=$1
    [[ -f $f ]] || return 0
    local pid
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
}

case $cmd in
start)
    mkdir -p "$dir"/{state,spool,log}
    dir=$(cd "$dir" && pwd)
    # munge: one daemon per machine, shared by every test run
    if ! pgrep -x munged >/dev/null; then
        if [[ ! -f /etc/munge/munge.key ]]; then
            mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
                dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
            chown munge:munge /etc/munge/munge.key
            chmod 0400 /etc/munge/munge.key
        fi
        install -d -o munge -g munge -m 0755 /run/munge
        install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
        runuser -u munge -- /usr/sbin/munged
    fi
    host=$(hostname -s)
    node=$(slurmd -C | head -1)
    # "NodeName=x CPUs=2 Boards=1 ... RealMemory=23000": keep CPUs and memory
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    plug=$(ls /usr/lib/x86_64-linux-gnu/slurm-wlm/spank_pbs.so /usr/lib/*/slurm*/spank_pbs.so 2>/dev/null | head -1 || true)
    : >"$dir/plugstack.conf"
    if [[ -n $plug ]]; then
        echo "required $plug" >"$dir/plugstack.conf"
    fi
    {
        echo "ClusterName=fresco-test"
        echo "SlurmctldHost=$host(127.0.0.1)"
        echo "SlurmctldPort=$((6817 + RANDOM % 200 * 2))"
        echo "SlurmdPort=$((7017 + RANDOM % 200 * 2))"
        echo "SlurmUser=root"
        echo "SlurmdUser=root"
        echo "AuthType=auth/munge"
        echo "StateSaveLocation=$dir/state"
        echo "SlurmdSpoolDir=$dir/spool"
        echo "SlurmctldPidFile=$dir/slurmctld.pid"
        echo "SlurmdPidFile=$dir/slurmd.pid"
        echo "SlurmctldLogFile=$dir/log/slurmctld.log"
        echo "SlurmdLogFile=$dir/log/slurmd.log"
        echo "ProctrackType=proctrack/linuxproc"
        echo "TaskPlugin=task/none"
        echo "PlugStackConfig=$dir/plugstack.conf"
        echo "JobCompType=jobcomp/filetxt"
        echo "JobCompLoc=$dir/log/jobcomp.txt"
        echo "MinJobAge=3600"
        echo "ReturnToService=2"
        echo "SchedulerType=sched/backfill"
        echo "SelectType=select/cons_tres"
        echo "SelectTypeParameters=CR_Core"
        if [[ -n ${3:-} ]]; then echo "Prolog=$3"; fi
        if [[ -n ${4:-} ]]; then echo "Epilog=$4"; fi
        echo "NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN"
        echo "PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP"
    } >"$dir/slurm.conf"
    export SLURM_CONF=$dir/slurm.conf
    slurmctld -c -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF"
    for _ in $(seq 300); do
        if sinfo -h -o '%t' 2>/dev/null | grep -qx 'idle'; then
            echo "slurm: $host idle ($cpus CPUs, $mem MB), SLURM_CONF=$SLURM_CONF"
            exit 0
        fi
        sleep 0.1
    done
    echo "slurm: node did not become idle; logs in $dir/log" >&2
    tail -20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    exit 1
    ;;
stop)
    stop_pidfile "$dir/slurmd.pid"
    stop_pidfile "$dir/slurmctld.pid"
    ;;
*)
    echo "slurm-test.sh: unknown command '$cmd'" >&2
    exit 2
    ;;
esac
