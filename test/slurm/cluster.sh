#!/usr/bin/env bash
# A real one-node SLURM cluster for tests (../shared/research/slurm-local.md): `cluster.sh start DIR` writes
# DIR/slurm.conf, starts munged, slurmctld and slurmd (as root) and waits until the node is idle; `cluster.sh stop
# DIR` stops exactly the daemons it started (by pid). Tests export SLURM_CONF=DIR/slurm.conf.
set -euo pipefail
cmd=$1
D=$(cd "$2" && pwd)
case "$cmd" in
start)
  H=$(hostname)
  mkdir -p "$D/state" "$D/spool" "$D/munge"
  # munged of our own: its socket and key in DIR, so a machine's own munge (if any) is untouched.
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
  else
    cp /etc/munge/munge.key "$D/munge/munge.key"
  fi
  chmod 400 "$D/munge/munge.key"
  munged --force --key-file="$D/munge/munge.key" --socket="$D/munge/munge.socket" --pid-file="$D/munge/munged.pid" \
    --log-file="$D/munge/munged.log" --seed-file="$D/munge/munged.seed"
  mem=$(( $(free -m | awk '/Mem:/{print $2}') - 1024 ))
  cat >"$D/slurm.conf" <<CONF
ClusterName=tmetest
SlurmctldHost=$H
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/ctld.log
SlurmdLogFile=$D/d.log
SlurmctldPort=$(( 20000 + RANDOM % 20000 ))
SlurmdPort=$(( 40000 + RANDOM % 20000 ))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
NodeName=$H CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$D/slurm.conf"
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 1 60); do
    if sinfo -h -o %t 2>/dev/null | grep -q idle; then exit 0; fi
    sleep 0.5
  done
  echo "cluster.sh: the node did not come up: $(tail -3 "$D/ctld.log" "$D/d.log" 2>/dev/null)" >&2
  exit 1
  ;;
stop)
  pids=()
  for f in "$D/slurmd.pid" "$D/slurmctld.pid" "$D/munge/munged.pid"; do
    if [ -s "$f" ]; then pid=$(cat "$f"); kill "$pid" 2>/dev/null || true; pids+=("$pid"); fi
  done
  # They save state, logs and seeds as they stop: wait (at most 10 s each) until they are gone, so DIR can go.
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do
      st=$(awk '/^State:/{print $2}' "/proc/$pid/status" 2>/dev/null || true)
      if [ -z "$st" ] || [ "$st" = Z ]; then break; fi
      sleep 0.1
    done
  done
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
