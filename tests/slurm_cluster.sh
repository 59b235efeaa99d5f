#!/usr/bin/env bash
# A real single-node SLURM cluster on 127.0.0.1 for the `slurm` tests, from Debian's packages
# (slurmctld, slurmd, slurm-client, munge), as plain daemons with every file under one folder.
#
#   tests/slurm_cluster.sh start DIR   start munged, slurmctld, slurmd; wait for the node
#   tests/slurm_cluster.sh stop DIR    stop exactly those daemons (by their pid files)
#
# After `start`, DIR/env.sh holds what a client needs: SLURM_CONF, and DIR/bin first on PATH.
# DIR/bin/srun wraps /usr/bin/srun: the jobstep plugin of Snakemake strips every SLURM_*
# variable (SLURM_CONF too) before its nested srun, and the wrapper sets it again.
# No systemd, no /etc changes, no accounting (use `--slurm-status-command squeue`).
# A failed start stops whatever it had started. munged needs every folder above DIR to be
# open to all (755, as /tmp is), not 700 like pytest's temporary folders.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 && ( $1 == start || $1 == stop ) ]] || usage
action=$1
mkdir -p "$2"
R=$(cd "$2" && pwd)
DAEMONS=(slurmd slurmctld munged)   # stop order; started in reverse

pid_of() { # the pid in DIR/run/NAME.pid, if that process is alive and is NAME
    local file="$R/run/$1.pid" pid
    [[ -s $file ]] || return 1
    pid=$(tr -dc '0-9' < "$file")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$1"* ]] || return 1
    echo "$pid"
}

stop_one() {
    local name=$1 pid
    pid=$(pid_of "$name") || { rm -f "$R/run/$name.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "slurm_cluster: $name ($pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$R/run/$name.pid"
    echo "slurm_cluster: stopped $name ($pid)"
}

cancel_jobs() { # jobs still queued or running end through SLURM, before its daemons stop
    pid_of slurmctld >/dev/null || return 0
    local jobs
    jobs=$(SLURM_CONF="$R/slurm.conf" squeue -h -o %A 2>/dev/null) || return 0
    [[ -n $jobs ]] || return 0
    echo "slurm_cluster: cancelling jobs" $jobs
    SLURM_CONF="$R/slurm.conf" scancel $jobs 2>/dev/null || true
    for _ in $(seq 200); do
        [[ -z $(SLURM_CONF="$R/slurm.conf" squeue -h -o %A 2>/dev/null) ]] && return 0
        sleep 0.1
    done
    echo "slurm_cluster: jobs still listed after 20 s" >&2
}

stop_all() {
    cancel_jobs
    for name in "${DAEMONS[@]}"; do stop_one "$name"; done
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    for tool in munged mungekey slurmctld slurmd sinfo srun sbatch squeue; do
        command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || {
            echo "slurm_cluster: $tool not found; install Debian's slurmctld slurmd" \
                "slurm-client munge (make test-slurm does)" >&2
            exit 1
        }
    done
    export PATH="/usr/sbin:$PATH"
    if pid_of slurmctld >/dev/null || pid_of slurmd >/dev/null || pid_of munged >/dev/null; then
        echo "slurm_cluster: daemons of $R are already running; stop them first" >&2
        exit 1
    fi
    trap 'echo "slurm_cluster: start failed; stopping what was started" >&2; stop_all' ERR

    # munged refuses a key folder that is not 700, and its socket folder must be 755.
    mkdir -p "$R/munge" "$R/munge-sock" "$R/run" "$R/log" "$R/state" "$R/spool" "$R/bin"
    chmod 700 "$R/munge"
    chmod 755 "$R/munge-sock"
    [[ -s $R/munge/munge.key ]] || mungekey --create --keyfile="$R/munge/munge.key"
    chmod 600 "$R/munge/munge.key"
    local socket="$R/munge-sock/munge.socket.2"
    munged --key-file="$R/munge/munge.key" --socket="$socket" --pid-file="$R/run/munged.pid" \
        --log-file="$R/log/munged.log" --seed-file="$R/munge/munge.seed"

    # The node's topology as slurmd sees it, memory 1% below what it reports.
    local node
    node=$(slurmd -C | head -1)
    local cpus boards sockets cores threads memory
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")
    boards=$(sed -n 's/.*Boards=\([0-9]*\).*/\1/p' <<<"$node")
    sockets=$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$node")
    cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$node")
    threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$node")
    memory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    memory=$((memory * 99 / 100))
    local ctld_port slurmd_port
    ctld_port=$(free_port)
    slurmd_port=$(free_port)

    cat > "$R/slurm.conf" <<EOF
ClusterName=ci
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$R/state
SlurmdSpoolDir=$R/spool
SlurmctldPidFile=$R/run/slurmctld.pid
SlurmdPidFile=$R/run/slurmd.pid
SlurmctldLogFile=$R/log/slurmctld.log
SlurmdLogFile=$R/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=300
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus Boards=$boards SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    cat > "$R/bin/srun" <<EOF
#!/bin/sh
# Snakemake's jobstep plugin strips SLURM_CONF before its nested srun; set it again.
SLURM_CONF='$R/slurm.conf' exec /usr/bin/srun "\$@"
EOF
    chmod 755 "$R/bin/srun"
    cat > "$R/env.sh" <<EOF
export SLURM_CONF='$R/slurm.conf'
export PATH='$R/bin':"\$PATH"
EOF
    export SLURM_CONF="$R/slurm.conf"
    slurmctld
    slurmd -N localhost
    for _ in $(seq 300); do
        if [[ $(sinfo -h -N -o %t 2>/dev/null) == idle ]]; then
            trap - ERR
            echo "slurm_cluster: up in $R (slurmctld $(pid_of slurmctld), slurmd" \
                "$(pid_of slurmd), munged $(pid_of munged); $cpus CPUs, $memory MB)"
            return 0
        fi
        sleep 0.1
    done
    echo "slurm_cluster: the node did not become idle within 30 s:" >&2
    sinfo -N >&2 || true
    tail -20 "$R/log/slurmctld.log" "$R/log/slurmd.log" >&2 || true
    stop_all
    exit 1
}

case $action in
    start) start ;;
    stop) stop_all ;;
    *) usage ;;
esac
