#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, to try `chorus grid FILE --emit slurm` for real
# (tests/slurm.rs runs it):
#   scripts/slurm-local.sh start [DIR]   install slurm-wlm and munge if missing (apt-get, as root),
#                                        start munged (unless one answers), slurmctld and slurmd
#                                        with a config, state and logs in DIR; wait until the node
#                                        is idle; print `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm-local.sh stop [DIR]    stop the daemons `start` started (their pids are in DIR)
# DIR defaults to ${TMPDIR:-/tmp}/chorus-slurm. Slurm's config, state and logs live only in DIR
# (munge uses /etc/munge/munge.key, made if missing); no systemd, no cgroups (proctrack/linuxproc,
# task/none), no accounting; free ports are picked, so a cluster left behind by a killed run does
# not block the next one.
set -euo pipefail

say() { printf 'slurm-local.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

cmd=${1:-}
dir=${2:-${TMPDIR:-/tmp}/chorus-slurm}

# The daemons started here, in the order they are stopped.
DAEMONS=(slurmd slurmctld munged)

install() {
  local missing=()
  for tool in munged munge slurmctld slurmd sbatch sinfo; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  [[ $(id -u) -eq 0 ]] || die "${missing[*]} not installed, and installing slurm-wlm and munge with apt-get needs root"
  command -v apt-get >/dev/null || die "${missing[*]} not installed and there is no apt-get: install Slurm and munge, then rerun"
  say "installing slurm-wlm and munge with apt-get (${missing[*]} missing)"
  # Keep the packages' init scripts from starting daemons with the system-wide config (which
  # does not exist): this script starts its own. Docker images ship such a policy already.
  local policy=/usr/sbin/policy-rc.d made=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    made=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed; check access to the Debian mirrors"
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null ||
    die "apt-get install slurm-wlm munge failed"
  if [[ -n $made ]]; then
    rm -f "$policy"
    trap - EXIT
  fi
}

munge_answers() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  if munge_answers; then
    say "using the munged already running"
    return
  fi
  local key=/etc/munge/munge.key
  if [[ ! -s $key ]]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
  fi
  # munged wants its key, state, log and socket folders owned by the user it runs as.
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge "$key" /run/munge /var/lib/munge /var/log/munge
  chmod 0400 "$key"
  chmod 0755 /run/munge
  setsid setpriv --reuid=munge --regid=munge --init-groups munged --foreground >"$dir/munged.out" 2>&1 </dev/null &
  echo $! >"$dir/munged.pid"
  for _ in $(seq 50); do
    munge_answers && return
    sleep 0.1
  done
  die "munged did not start: $(cat "$dir/munged.out")"
}

# Something listens on 127.0.0.1:PORT.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_conf() {
  local node=$1 port=6817
  while listening "$port" || listening $((port + 1)); do
    port=$((port + 2))
    ((port < 7817)) || die "no free pair of ports between 6817 and 7817"
  done
  # Slightly under what slurmd measures, or it drains the node for having less than declared.
  local mem
  mem=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
  mkdir -p "$dir/state" "$dir/spool"
  cat >"$dir/slurm.conf" <<EOF
# Written by scripts/slurm-local.sh: one node, everything under $dir.
ClusterName=chorus-local
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pidfile
SlurmdPidFile=$dir/slurmd.pidfile
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  install
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  for daemon in "${DAEMONS[@]}"; do
    [[ -e $dir/$daemon.pid ]] && die "$dir already holds a cluster; run: $0 stop $dir"
  done
  start_munge
  local node
  node=$(hostname -s)
  write_conf "$node"
  export SLURM_CONF=$dir/slurm.conf
  setsid slurmctld -D -c -f "$SLURM_CONF" >"$dir/slurmctld.out" 2>&1 </dev/null &
  echo $! >"$dir/slurmctld.pid"
  setsid slurmd -D -N "$node" -f "$SLURM_CONF" >"$dir/slurmd.out" 2>&1 </dev/null &
  echo $! >"$dir/slurmd.pid"
  local state=""
  for _ in $(seq 120); do
    state=$(sinfo -h -N -o %T 2>/dev/null || true)
    [[ $state == idle ]] && break
    sleep 0.5
  done
  if [[ $state != idle ]]; then
    local logs
    logs=$(tail -n 20 "$dir"/slurmctld.log "$dir"/slurmd.log "$dir"/*.out 2>&1 || true)
    stop
    die "the node is not idle after 60 s (state: ${state:-no answer}); logs:
$logs"
  fi
  say "one-node cluster up (node $node, $(nproc) CPUs); state and logs in $dir"
  echo "export SLURM_CONF=$SLURM_CONF"
}

# Cancels this cluster's jobs (slurmd leaves running jobs behind when it stops), then TERM, and
# KILL after 10 s, each daemon whose pid file is here and whose process is still that daemon (a
# recycled pid is left alone).
stop() {
  if [[ -e $dir/slurmctld.pid ]] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    export SLURM_CONF=$dir/slurm.conf
    if scancel --user="$(id -un)" 2>/dev/null; then
      for _ in $(seq 50); do
        [[ -z $(squeue -h 2>/dev/null) ]] && break
        sleep 0.2
      done
    fi
  fi
  for daemon in "${DAEMONS[@]}"; do
    local file=$dir/$daemon.pid
    [[ -e $file ]] || continue
    local pid
    pid=$(cat "$file")
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$daemon" ]] &&
      kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
  done
}

case $cmd in
  start) start ;;
  stop)
    [[ -d $dir ]] || exit 0
    stop
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    [[ -z $cmd ]] && exit 0
    die "unknown command '$cmd'"
    ;;
esac
