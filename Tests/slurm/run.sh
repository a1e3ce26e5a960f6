#!/usr/bin/env bash
# The jobs/ scripts under a real SLURM: install slurm-wlm and munge if missing,
# write a one-node configuration, start munged, slurmctld and slurmd (no systemd;
# they fork and write pid files), wait for the node to be idle, submit every
# jobs/*.sbatch with `sbatch --wait`, check each job's exit state and output, and
# stop the daemons this script started -- also when a check fails or the script is
# interrupted. Called by `make test-slurm`; needs root and a release build.
#
# Ends with the plain line `slurm: N passed, N failed`.
set -u
cd "$(dirname "$0")/../.."
CHORUS_DIR=$PWD
[ "$(id -u)" -eq 0 ] || { echo "test-slurm: needs root (it starts the SLURM and munge daemons)" >&2; exit 1; }
[ -x .build/release/ddp-train ] || { echo "test-slurm: no release build; run make build" >&2; exit 1; }

missing=$(for p in slurm-wlm munge; do dpkg -s $p >/dev/null 2>&1 || echo $p; done)
if [ -n "$missing" ]; then
  echo "installing:" $missing
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null || exit 1
fi

STATE=$(mktemp -d /tmp/chorus-slurm.XXXXXX)
chmod 755 "$STATE"
export SLURM_CONF=$STATE/slurm.conf
NODE=$(hostname -s)
started=()

stop_daemons() {
  # Newest first: slurmd, slurmctld, then munged if this script started it.
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    local pidfile=${started[i]} pid
    pid=$(cat "$pidfile" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  rm -rf "$STATE"
}
trap stop_daemons EXIT
trap 'exit 130' INT TERM

cat > "$SLURM_CONF" <<CONF
# One node, this machine, for testing jobs/ (written by Tests/slurm/run.sh).
ClusterName=chorus-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
# No cgroups or CPU affinity in containers and small VMs.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# A job asking for more than the node has fails at submission instead of pending for ever.
EnforcePartLimits=ALL
# Claim 4 CPUs whatever the hardware has, so 4-rank jobs fit on a 2-core machine.
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN
PartitionName=test Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/results"

# munged: reuse a running one, otherwise start our own.
if ! munge -n </dev/null >/dev/null 2>&1; then
  [ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create || exit 1
  install -d -o munge -g munge -m 755 /run/munge
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/chorus-test.pid || { echo "test-slurm: munged did not start" >&2; exit 1; }
  started+=(/run/munge/chorus-test.pid)
fi
# The pid files appear once the daemons have forked.
/usr/sbin/slurmctld && started+=("$STATE/slurmctld.pid") || { echo "test-slurm: slurmctld did not start" >&2; exit 1; }
/usr/sbin/slurmd && started+=("$STATE/slurmd.pid") || { echo "test-slurm: slurmd did not start" >&2; tail "$STATE/slurmd.log"; exit 1; }

state=""
for _ in $(seq 60); do
  state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null)
  [ "$state" = idle ] && break
  sleep 1
done
if [ "$state" != idle ]; then
  echo "test-slurm: node $NODE is '${state:-unknown}' after 60 s, not idle" >&2
  tail -n 20 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2
  exit 1
fi
echo "slurm: node $NODE idle ($(sinfo -h -o '%c CPUs, partition %P'))"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ -f "${2:-}" ] && sed 's/^/    | /' "$2" | tail -n 25; }

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1
export CHORUS_DIR RESULTS_DIR=$STATE/results

# submit NAME EXPECTED_STATE SCRIPT ARGS...: runs the job to its end (10 minutes at
# most), leaving its id in $job and its output file in $out; passes when the job ends
# in EXPECTED_STATE (COMPLETED means exit code 0).
submit() {
  local name=$1 expected=$2 script=$3; shift 3
  out=$STATE/$(basename "$script" .sbatch)-$RANDOM.out
  job=$(timeout 600 sbatch --parsable --wait --output="$out" --time=10 "$script" "$@" 2>"$out.sbatch" | tail -n 1)
  local jobstate
  jobstate=$(scontrol show job "$job" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
  local exitcode
  exitcode=$(scontrol show job "$job" 2>/dev/null | grep -o ' ExitCode=[0-9:]*' | cut -d= -f2)
  if [ "$jobstate" = "$expected" ]; then pass "$name: job $job $jobstate (exit $exitcode)"; return 0; fi
  fail "$name: job ${job:-not submitted} ended ${jobstate:-unknown} (exit ${exitcode:-?}), expected $expected" "$out"
  [ -s "$out.sbatch" ] && sed 's/^/    | sbatch: /' "$out.sbatch"
  return 1
}

# expect_in FILE PATTERN WHAT: passes when FILE has a line matching PATTERN.
expect_in() {
  if grep -qE -e "$2" "$1" 2>/dev/null; then pass "$3"; else fail "$3: no line matching '$2' in $1" "$1"; fi
}

# section TITLE: starts a group of checks; prints how long the previous one took,
# so a slow CI points at its section.
section_start=$SECONDS
section() {
  [ -n "${section_title:-}" ] && echo "   ($((SECONDS - section_start)) s)"
  section_start=$SECONDS section_title=$1
  [ "$1" = end ] || echo "== $1"
}

section "jobs/ddp-train.sbatch: 4 ranks by srun --mpi=pmix"
if submit "ddp-train" COMPLETED jobs/ddp-train.sbatch --steps 40 --log-every 20; then
  expect_in "$out" "^done: 40 steps" "ddp-train: 4 ranks trained 40 steps"
  expect_in "$out" "4 tasks, launch with srun" "ddp-train: the job had 4 tasks"
  expect_in "$RESULTS_DIR/ddp-train-$job/metrics.json" '"ranks" : 4' "ddp-train: metrics under the job id, 4 ranks"
  [ -s "$RESULTS_DIR/ddp-train-$job/model.safetensors" ] && pass "ddp-train: model saved under the job id" \
    || fail "ddp-train: no $RESULTS_DIR/ddp-train-$job/model.safetensors"
fi

section "jobs/pipe-train.sbatch: 3 stages by mpirun inside the allocation"
if CHORUS_LAUNCH=mpirun submit "pipe-train" COMPLETED jobs/pipe-train.sbatch --steps 20 --log-every 10; then
  expect_in "$out" "^done: 20 steps.*bubble" "pipe-train: 3 stages trained 20 steps"
  expect_in "$RESULTS_DIR/pipe-train-$job/metrics.json" '"stages" : 3' "pipe-train: metrics under the job id, 3 stages"
fi

section "jobs/ps-train.sbatch: 1 server + 3 workers, SSP, by srun"
if submit "ps-train" COMPLETED jobs/ps-train.sbatch --steps 30 --log-every 10; then
  expect_in "$out" "^done: 30 steps.*ssp, staleness 2: max staleness [0-2]," "ps-train: 3 workers trained 30 steps within the bound"
  expect_in "$RESULTS_DIR/ps-train-$job/metrics.json" '"workers" : 3' "ps-train: metrics under the job id, 3 workers"
fi
if SERVERS=4 submit "ps-train, 4 servers on 4 tasks" FAILED jobs/ps-train.sbatch --steps 5; then
  expect_in "$out" "leaves no worker" "ps-train: the output says no rank is left to work"
fi

section "jobs/tune.sbatch: 4 tasks, 2 per trial, a 2 x 2 grid by cross-validation, by srun"
if RANKS_PER_TRIAL=2 submit "tune" COMPLETED jobs/tune.sbatch --steps 10 --log-every 10; then
  expect_in "$out" "^best: trial [0-9]+ " "tune: the report names the best trial against the default"
  expect_in "$out" "^refit of trial [0-9]+ .*test accuracy" "tune: the best configuration was refit"
  expect_in "$RESULTS_DIR/tune-$job/metrics.json" '"groups" : 2' "tune: metrics under the job id, 2 groups"
  expect_in "$RESULTS_DIR/tune-$job/results.csv" "^6,0.1,0.9," "tune: the results file has every trial"
fi
if RANKS_PER_TRIAL=3 submit "tune, 3 ranks per trial on 4 tasks" FAILED jobs/tune.sbatch --steps 5; then
  expect_in "$out" "do not divide the 4 ranks" "tune: the output says the groups do not divide the tasks"
fi

section "jobs/fed-train.sbatch: 4 tasks, 20 clients, shards:2, 3 rounds with a checkpoint, by srun"
if CLIENTS=20 FRACTION=0.2 ROUNDS=3 submit "fed-train" COMPLETED jobs/fed-train.sbatch --local-epochs 1 --checkpoint-every 2; then
  expect_in "$out" "^done: 3 rounds" "fed-train: 3 rounds done"
  expect_in "$RESULTS_DIR/fed-train-$job/metrics.json" '"clients_reported" : 12' "fed-train: metrics under the job id, 4 clients a round"
  expect_in "$RESULTS_DIR/fed-train-$job/rounds.csv" "^3,4,4,0," "fed-train: the rounds file has every round"
  if ls "$RESULTS_DIR/fed-train-$job/checkpoints/"*.safetensors >/dev/null 2>&1; then pass "fed-train: checkpoints under the job id"
  else fail "fed-train: no checkpoint in $RESULTS_DIR/fed-train-$job/checkpoints" "$out"; fi
fi
if submit "fed-train with a bad partition" FAILED jobs/fed-train.sbatch --partition zipf:1; then
  expect_in "$out" "--partition must be iid, shards:S, dirichlet:ALPHA or labels:L" "fed-train: the output names the flag"
fi

section "a job that cannot run fails with its cause in the output, not a hang"
if STAGES=2 submit "pipe-train, 3 tasks for 2 stages" FAILED jobs/pipe-train.sbatch --steps 5; then
  expect_in "$out" "multiple of.*stages|stages.*multiple" "pipe-train: the output names the rank/stage mismatch"
fi
if sbatch --parsable --ntasks=64 --output=/dev/null jobs/ddp-train.sbatch >"$STATE/too-big.log" 2>&1; then
  fail "64 tasks on a 4-CPU cluster: sbatch accepted it (it would pend for ever)"
else
  pass "64 tasks on a 4-CPU cluster: refused at submission"
fi

if [ -f jobs/scaling-sweep.sbatch ]; then
  echo "== jobs/scaling-sweep.sbatch: the benchmark driver's smoke profile"
  if submit "scaling-sweep" COMPLETED jobs/scaling-sweep.sbatch --profile smoke; then
    for csv in p2p allreduce ddp pipeline; do
      expect_in "$RESULTS_DIR/bench-$job/$csv.csv" "^[^,]+,[0-9]{4}-" "scaling-sweep: $csv.csv with rows under the job id"
    done
    expect_in "$RESULTS_DIR/bench-$job/allreduce.table" "^2,1,2,[0-9]+,[a-z-]+$" "scaling-sweep: a calibrated allreduce.table for 2 ranks"
    for png in allreduce-one-node ddp-scaling pipeline-bubble costmodel-allreduce; do
      [ -s "$RESULTS_DIR/bench-$job/plots/$png.png" ] && pass "scaling-sweep: plots/$png.png" \
        || fail "scaling-sweep: no plots/$png.png under the job id" "$out"
    done
  fi
fi

section end; echo "slurm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
