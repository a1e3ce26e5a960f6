# Sourced by the jobs/*.sbatch scripts: where Chorus is, and how to start ranks.
#
#   CHORUS_DIR     the Chorus checkout holding a release build (`make build`);
#                  default: the directory you ran sbatch from.
#   CHORUS_LAUNCH  srun (default): `srun --mpi=pmix`, needs SLURM built with PMIx
#                  (check `srun --mpi=list`); or mpirun: OpenMPI reads the
#                  allocation from SLURM itself.
#   RESULTS_DIR    where results go; each job writes under a folder named with its
#                  job id. Default: $CHORUS_DIR/results.

CHORUS_DIR=${CHORUS_DIR:-${SLURM_SUBMIT_DIR:-$PWD}}
CHORUS_BIN=$CHORUS_DIR/.build/release
CHORUS_LAUNCH=${CHORUS_LAUNCH:-srun}
RESULTS_DIR=${RESULTS_DIR:-$CHORUS_DIR/results}
JOB_ID=${SLURM_JOB_ID:-local-$$}

if [ ! -x "$CHORUS_BIN/ddp-train" ]; then
  echo "error: no Chorus build at $CHORUS_BIN; run 'make build' in the checkout, or set CHORUS_DIR" >&2
  exit 2
fi

# One BLAS thread per core the task was given (SLURM_CPUS_PER_TASK), not the
# node's cores divided among ranks that SLURM may have packed differently.
CHORUS_THREADS=${SLURM_CPUS_PER_TASK:-1}

# chorus_run PROGRAM ARGS...: one rank per SLURM task.
chorus_run() {
  local program=$1; shift
  case "$CHORUS_LAUNCH" in
    srun) srun --mpi=pmix "$CHORUS_BIN/$program" "$@" ;;
    mpirun) mpirun "$CHORUS_BIN/$program" "$@" ;;
    *) echo "error: CHORUS_LAUNCH must be srun or mpirun (got '$CHORUS_LAUNCH')" >&2; return 2 ;;
  esac
}

echo "job $JOB_ID: $SLURM_JOB_NUM_NODES node(s) [$SLURM_JOB_NODELIST], $SLURM_NTASKS tasks, launch with $CHORUS_LAUNCH, $(date -u +%FT%TZ)"
