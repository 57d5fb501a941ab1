#!/usr/bin/env bash
# A one-node Slurm test cluster on localhost, for the sweep tests and for trying `npm run sweep --
# SPEC --engine slurm` without a real cluster. Debian 12's packages (Slurm 22.05, MUNGE 0.5.15,
# MariaDB 10.11 for accounting), everything else private to one folder.
#
#   sudo bash scripts/slurm-test-cluster.sh install   # apt-get: slurm-wlm munge (+ slurmdbd, MariaDB), only what is missing
#   sudo bash scripts/slurm-test-cluster.sh start     # munged, MariaDB + slurmdbd, slurmctld, slurmd; prints the env line
#   eval "$(sudo bash scripts/slurm-test-cluster.sh env)"   # export SLURM_CONF=... for sbatch, squeue, sacct, scancel
#   sudo bash scripts/slurm-test-cluster.sh status
#   sudo bash scripts/slurm-test-cluster.sh stop      # cancels jobs, stops the daemons this script started
#
# What it sets up (all under $SLURM_TEST_DIR, default /tmp/dinotwins-slurm):
#   - munged with a generated key, on MUNGE's default socket /run/munge/munge.socket.2 (Slurm's
#     slurmdbd connections only use the default socket); a munged already answering there is reused;
#   - a private MariaDB (datadir mysql/, 127.0.0.1:PORT+3) and slurmdbd (PORT+2), so that sacct works:
#     without slurmdbd sacct only says "Slurm accounting storage is disabled"
#     (SLURM_TEST_ACCOUNTING=none skips both);
#   - slurmctld (PORT) and slurmd (PORT+1) with a generated etc/slurm.conf: node "localhost" with
#     all CPUs and most of the memory, partition "debug", select/cons_tres with CR_CPU so that one
#     task takes one CPU; proctrack/cgroup + task/cgroup when a writable cgroup v1 freezer hierarchy
#     exists, else (cgroup v2 without systemd, containers with read-only cgroups) proctrack/linuxproc
#     + task/none (SLURM_TEST_CGROUP=yes|no forces one); if slurmd does not come up with the cgroup
#     plugins, the script says so and falls back to the non-cgroup ones.
# Ports: SLURM_TEST_PORT (default 16817) and the next three, away from Slurm's 6817-6819.
# Everything runs as root (slurmd must be root to start jobs), so jobs run as the submitting user.
set -euo pipefail

DIR="${SLURM_TEST_DIR:-/tmp/dinotwins-slurm}"
PORT="${SLURM_TEST_PORT:-16817}"
ACCOUNTING="${SLURM_TEST_ACCOUNTING:-slurmdbd}"
CGROUP="${SLURM_TEST_CGROUP:-auto}"
CONF="$DIR/etc/slurm.conf"
MUNGE_SOCKET=/run/munge/munge.socket.2
export SLURM_CONF="$CONF"

say() { echo "slurm-test-cluster: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

packages() {
  local p=(slurm-wlm munge)
  [[ "$ACCOUNTING" == slurmdbd ]] && p+=(slurmdbd slurm-wlm-mysql-plugin mariadb-server)
  echo "${p[@]}"
}

missing_packages() {
  local m=()
  for p in $(packages); do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || m+=("$p"); done
  echo "${m[@]}"
}

cmd_install() {
  local m
  m="$(missing_packages)"
  if [[ -z "$m" ]]; then say "packages present: $(packages)"; return 0; fi
  [[ $EUID -eq 0 ]] || die "installing $m needs root (apt-get)"
  command -v apt-get >/dev/null || die "no apt-get: install $m with your package manager"
  say "installing $m"
  # Package scripts would start the daemons with Debian's default config; we start our own.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod +x $policy; own_policy=1; fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $m >/dev/null; } || rc=$?
  [[ $own_policy -eq 1 ]] && rm -f $policy
  [[ $rc -eq 0 ]] || die "apt-get install $m failed (exit $rc)"
  say "installed: $(dpkg-query -W -f='${Package} ${Version}\n' slurmctld munge 2>/dev/null | tr '\n' ' ')"
}

pid_alive() { local p; p=$(cat "$1" 2>/dev/null) && [[ -n $p ]] && kill -0 "$p" 2>/dev/null; }

wait_for() { # seconds, description, command...
  local t=$1 what=$2; shift 2
  for ((i = 0; i < t * 4; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  return 1
}

munge_ok() { munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; }

start_munge() {
  if munge_ok; then
    [[ -e "$DIR/munge/ours" ]] || say "munged: using the one already answering on $MUNGE_SOCKET"
    return 0
  fi
  mkdir -p "$DIR/munge" /run/munge
  chmod 700 "$DIR/munge"; chmod 755 /run/munge
  if [[ ! -s "$DIR/munge/munge.key" ]]; then
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$DIR/munge/munge.key"
  fi
  munged --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munge/munged.pid" \
    --seed-file="$DIR/munge/munged.seed" --log-file="$DIR/log/munged.log" --num-threads=4 \
    || die "munged did not start: $(tail -3 "$DIR/log/munged.log" 2>/dev/null)"
  touch "$DIR/munge/ours"
  wait_for 10 munge munge_ok || die "munged started but does not answer on $MUNGE_SOCKET"
}

mysql_root() { mariadb --no-defaults -S "$DIR/mysql/mysqld.sock" -u root "$@"; }

start_accounting() {
  [[ "$ACCOUNTING" == slurmdbd ]] || return 0
  mkdir -p "$DIR/mysql"
  if ! pid_alive "$DIR/mysql/mysqld.pid"; then
    if [[ ! -d "$DIR/mysql/data/mysql" ]]; then
      mariadb-install-db --no-defaults --datadir="$DIR/mysql/data" --user=root --auth-root-authentication-method=socket \
        --skip-test-db >"$DIR/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed: see $DIR/log/mariadb-install.log"
    fi
    (mariadbd --no-defaults --datadir="$DIR/mysql/data" --socket="$DIR/mysql/mysqld.sock" --port=$((PORT + 3)) \
      --bind-address=127.0.0.1 --user=root --pid-file="$DIR/mysql/mysqld.pid" --log-error="$DIR/log/mariadb.log" \
      --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &)
    wait_for 30 mariadb mysql_root -e 'select 1' || die "MariaDB did not start: $(tail -3 "$DIR/log/mariadb.log")"
  fi
  mysql_root -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'dinotwins-test';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
  cat >"$DIR/etc/slurmdbd.conf" <<EOF
# Generated by scripts/slurm-test-cluster.sh
AuthType=auth/munge
DbdAddr=127.0.0.1
DbdHost=localhost
DbdPort=$((PORT + 2))
SlurmUser=root
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$((PORT + 3))
StorageUser=slurm
StoragePass=dinotwins-test
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$DIR/etc/slurmdbd.conf"
  if ! pid_alive "$DIR/slurmdbd.pid"; then
    slurmdbd || die "slurmdbd did not start: $(tail -3 "$DIR/log/slurmdbd.log")"
  fi
  wait_for 30 slurmdbd bash -c "exec 3<>/dev/tcp/127.0.0.1/$((PORT + 2))" || die "slurmdbd does not listen on port $((PORT + 2)): $(tail -3 "$DIR/log/slurmdbd.log")"
}

# Whether Slurm's cgroup plugins can work here: a writable cgroup v1 freezer hierarchy.
# (Slurm 22.05's cgroup/v2 wants systemd to delegate a subtree, which containers and CI lack.)
cgroup_usable() {
  case "$CGROUP" in
    yes) return 0 ;;
    no) return 1 ;;
  esac
  local probe=/sys/fs/cgroup/freezer/dinotwins-probe-$$
  [[ -d /sys/fs/cgroup/freezer ]] && mkdir "$probe" 2>/dev/null && rmdir "$probe"
}

write_conf() { # $1: cgroup|none
  local cpus mem plugins
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  if [[ $1 == cgroup ]]; then
    plugins=$'ProctrackType=proctrack/cgroup\nTaskPlugin=task/cgroup\nJobAcctGatherType=jobacct_gather/cgroup'
    printf '# Generated by scripts/slurm-test-cluster.sh\nCgroupPlugin=autodetect\n' >"$DIR/etc/cgroup.conf"
  else
    plugins=$'ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/linux'
    rm -f "$DIR/etc/cgroup.conf"
  fi
  local acct
  if [[ "$ACCOUNTING" == slurmdbd ]]; then
    acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$((PORT + 2))"
  else
    acct="AccountingStorageType=accounting_storage/none"
  fi
  cat >"$CONF" <<EOF
# Generated by scripts/slurm-test-cluster.sh: one node (this machine, as "localhost"), one partition.
ClusterName=dinotwins-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
$plugins
$acct
JobAcctGatherFrequency=30
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
# scancel and time limits: SIGTERM, then SIGKILL after KillWait seconds (runs checkpoint in between).
KillWait=30
MinJobAge=300
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

node_idle() { sinfo -h -n localhost -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }

stop_slurm_daemons() {
  scontrol shutdown >/dev/null 2>&1 || true
  for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
    for ((i = 0; i < 40; i++)); do pid_alive "$f" || break; sleep 0.25; done
    stop_pid "$f" "$(basename "$f" .pid)"
  done
}

stop_pid() { # pid file, name: SIGTERM, then wait up to 30 s
  local p
  p=$(cat "$1" 2>/dev/null) && [[ -n $p ]] && kill -0 "$p" 2>/dev/null || return 0
  kill "$p" 2>/dev/null || return 0
  wait_for 30 "$2" bash -c "! kill -0 $p 2>/dev/null" || say "$2 (pid $p) is still running"
}

start_slurm() {
  local mode=none
  cgroup_usable && mode=cgroup
  write_conf $mode
  pid_alive "$DIR/slurmctld.pid" || slurmctld || die "slurmctld did not start: $(tail -3 "$DIR/log/slurmctld.log")"
  wait_for 30 slurmctld scontrol ping || die "slurmctld does not answer: $(tail -3 "$DIR/log/slurmctld.log")"
  pid_alive "$DIR/slurmd.pid" || slurmd -N localhost || true
  if ! wait_for 30 slurmd node_idle; then
    if [[ $mode == cgroup && "$CGROUP" == auto ]]; then
      say "slurmd did not come up with proctrack/cgroup + task/cgroup ($(grep -i error "$DIR/log/slurmd.log" | tail -1)); falling back to proctrack/linuxproc + task/none"
      stop_slurm_daemons
      mode=none
      write_conf none
      slurmctld || die "slurmctld did not restart"
      wait_for 30 slurmctld scontrol ping || die "slurmctld does not answer"
      slurmd -N localhost || true
      wait_for 30 slurmd node_idle || die "slurmd did not come up: $(tail -3 "$DIR/log/slurmd.log")"
    else
      die "slurmd did not come up: $(tail -3 "$DIR/log/slurmd.log")"
    fi
  fi
  [[ $mode == cgroup ]] && say "process tracking: proctrack/cgroup + task/cgroup" \
    || say "process tracking: proctrack/linuxproc + task/none (no writable cgroup v1 freezer hierarchy here, or SLURM_TEST_CGROUP=no)"
}

cmd_start() {
  [[ $EUID -eq 0 ]] || die "starting a test cluster needs root (slurmd starts jobs as their users; munged uses /run/munge)"
  local m
  m="$(missing_packages)"
  [[ -z "$m" ]] || die "not installed: $m; run: sudo bash scripts/slurm-test-cluster.sh install"
  mkdir -p "$DIR/etc" "$DIR/state" "$DIR/spool" "$DIR/log"
  start_munge
  start_accounting
  start_slurm
  echo "export SLURM_CONF=$CONF" >"$DIR/env.sh"
  say "up: $(sinfo -h -o '%P %a %D node(s) %T, %c CPUs' | head -1); accounting: $ACCOUNTING; config $CONF"
  cat "$DIR/env.sh"
}

cmd_stop() {
  if [[ -s "$CONF" ]] && scontrol ping >/dev/null 2>&1; then
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
    if [[ -n "${jobs// /}" ]]; then
      say "cancelling jobs $jobs"
      scancel $jobs || true
      wait_for 60 jobs bash -c '[[ -z "$(squeue -h 2>/dev/null)" ]]' || say "jobs still listed after 60 s: $(squeue -h | head -3)"
    fi
  fi
  stop_slurm_daemons
  stop_pid "$DIR/slurmdbd.pid" slurmdbd
  stop_pid "$DIR/mysql/mysqld.pid" MariaDB
  if [[ -e "$DIR/munge/ours" ]]; then
    stop_pid "$DIR/munge/munged.pid" munged
    rm -f "$DIR/munge/ours"
  fi
  say "stopped (logs and state stay in $DIR)"
}

cmd_status() {
  for d in munge/munged mysql/mysqld slurmdbd slurmctld slurmd; do
    if pid_alive "$DIR/$d.pid"; then echo "$(basename $d): running (pid $(cat "$DIR/$d.pid" 2>/dev/null))"; else echo "$(basename $d): not running"; fi
  done
  if [[ -s "$CONF" ]] && scontrol ping >/dev/null 2>&1; then sinfo; squeue; fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) [[ -s "$DIR/env.sh" ]] && cat "$DIR/env.sh" || die "no cluster started in $DIR" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
