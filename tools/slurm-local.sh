#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests and for trying Slurm scripts:
# Debian's slurm-wlm and munge (installed with apt-get when missing), slurmctld and slurmd on
# localhost, one partition with this machine's CPUs (at least 2) and memory.
#
#   tools/slurm-local.sh [start]   install if needed, write the configuration, start (idempotent)
#   tools/slurm-local.sh stop      stop the daemons this script started
#   tools/slurm-local.sh status    say whether the cluster answers
#
# Settings (environment): SLURM_LOCAL_PARTITION (default `local`), SLURM_LOCAL_CPUS (default:
# the CPUs here, at least 2), SLURM_LOCAL_STATE (default /var/lib/slurm-local: state, spool,
# logs, pid files). The node is named after `hostname -s`. Needs root (apt-get, the daemons).
# `srun -n 2 CMD` runs two tasks on the node; `sbatch --array` runs array tasks side by side.
set -euo pipefail

verb="${1:-start}"
partition="${SLURM_LOCAL_PARTITION:-local}"
state="${SLURM_LOCAL_STATE:-/var/lib/slurm-local}"
conf_dir=/etc/slurm
conf="$conf_dir/slurm.conf"
node="$(hostname -s)"
cpus="${SLURM_LOCAL_CPUS:-$(nproc)}"
[ "$cpus" -ge 2 ] || cpus=2
# leave the system some memory
mem_mb=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10 ))

say() { printf 'slurm-local: %s\n' "$*"; }

answers() {
    command -v scontrol >/dev/null 2>&1 && timeout 5 scontrol ping 2>/dev/null | grep -q "is UP" \
        && timeout 5 sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'
}

# Stops the daemon whose pid file is $1 (only that process, and only if it is that daemon).
stop_pid() {
    local pidfile="$1" name="$2"
    [ -f "$pidfile" ] || return 0
    local pid
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    if [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$name" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        return
    fi
    say "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_config() {
    mkdir -p "$conf_dir" "$state"/{ctld,spool,log,run}
    cat >"$conf.new" <<CONF
# written by tools/slurm-local.sh: a one-node cluster on localhost
ClusterName=local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
# no cgroups needed (containers, CI)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# schedule at once: tests wait on dependencies
SchedulerParameters=sched_min_interval=100000
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=300
KillWait=10
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$partition Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
    if ! cmp -s "$conf.new" "$conf" 2>/dev/null; then
        mv "$conf.new" "$conf"
        return 0
    fi
    rm -f "$conf.new"
    return 1
}

start_munge() {
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then mungekey --create --force >/dev/null; else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; fi
    fi
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    if ! munge -n </dev/null >/dev/null 2>&1; then
        if id munge >/dev/null 2>&1; then
            su -s /bin/sh munge -c "/usr/sbin/munged" || /usr/sbin/munged --force
        else
            /usr/sbin/munged --force
        fi
        for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    munge -n </dev/null >/dev/null 2>&1 || { say "munged did not start"; exit 1; }
}

start() {
    install_packages
    local changed=0
    write_config && changed=1
    if [ "$changed" = 0 ] && answers; then
        say "up: node $node, partition $partition, $cpus CPUs"
        return 0
    fi
    start_munge
    if [ "$changed" = 1 ]; then
        stop_pid "$state/run/slurmd.pid" slurmd
        stop_pid "$state/run/slurmctld.pid" slurmctld
    fi
    if ! timeout 5 scontrol ping 2>/dev/null | grep -q "is UP"; then
        stop_pid "$state/run/slurmctld.pid" slurmctld
        # -c: a clean start, no jobs left from an earlier cluster
        slurmctld -c
    fi
    if [ ! -f "$state/run/slurmd.pid" ] || [ ! -d "/proc/$(cat "$state/run/slurmd.pid")" ]; then
        slurmd -N "$node"
    fi
    for _ in $(seq 300); do
        if answers; then
            scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
            say "up: node $node, partition $partition, $cpus CPUs, ${mem_mb} MB (logs in $state/log)"
            return 0
        fi
        # a node left down by an earlier start
        scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
        sleep 0.2
    done
    say "the cluster did not come up; the logs:"
    tail -n 20 "$state/log/slurmctld.log" "$state/log/slurmd.log" 2>/dev/null || true
    exit 1
}

case "$verb" in
    start) start ;;
    stop)
        stop_pid "$state/run/slurmd.pid" slurmd
        stop_pid "$state/run/slurmctld.pid" slurmctld
        say "stopped"
        ;;
    status)
        if answers; then say "up"; sinfo; else say "down"; exit 1; fi
        ;;
    *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
