#!/usr/bin/env python3
"""The scaling benchmark suite: runs the sweeps and writes one CSV per suite.

    Benchmarks/bench.py --profile quick            # `make bench-quick`, under 5 minutes
    Benchmarks/bench.py --profile full             # `make bench`
    Benchmarks/bench.py --launcher srun ...        # inside a SLURM allocation (jobs/scaling-sweep.sbatch)

Suites (all by default; --suites picks some):

    p2p        point-to-point latency/bandwidth, reduction and copy rates (cost model inputs)
    allreduce  every all-reduce algorithm and MPI_Allreduce, 4 B to 64 MiB, 2 and 4 ranks, and
               this node's decision table from a calibration at each (allreduce.table)
    ddp        ddp-train throughput: lenet and a communication-heavy mlp, ranks 1/2/4,
               strong and weak scaling, overlap on and off, a bucket-size sweep; and the
               two-rank efficiency of lenet in rounds of 1 rank then 2 (ddp-efficiency.csv)
    pipeline   pipe-train: stages 1-4 x micro-batches 1-16 x gpipe/1f1b on the 1024x4 mlp,
               and 2 stages on an mlp whose stages balance; the bubble measured, for the
               stages' measured times, and in theory
    compression ddp-train --compress none/fp16/bf16/powersgd/topk, lenet and the mlp, 2 ranks
               on one node and (as root) one per node of a simulated 2-node cluster at 1 and
               4 Gbit/s; every compressor measured in rounds next to uncompressed
    ps         ps-train LeNet, 1 server + 4 workers: BSP, SSP (S = 1, 2, 4, 8) and ASP without
               stragglers, with transient ones (--straggle 0.2:4) and with one persistent
               one (--slow-worker 4:3), next to ddp-train at 4 ranks; time to 85% test
               accuracy from the evaluation curve (--eval-every)
    tune       tune: a grid search's wall time at 1, 2 and 4 ranks (one trial per rank) on
               one node and (as root) on a simulated 2-node cluster; ASHA against the full
               grid on the same space (best score, training samples spent); tune-scaling
               and tune-schedulers run one of the two and keep the other's rows
    fed        fed-train LeNet, McMahan et al.'s Table 2 setting: 100 clients, C = 0.1, IID and
               shards:2, FedSGD against FedAvg (E, B) = (1, 50), (5, 50), (1, 10), (5, 10);
               rounds to the target test accuracy, the accuracy curve per configuration

p2p, allreduce and ddp also run on a simulated cluster (network namespaces, shaped
links; Benchmarks/cluster) when run as root outside SLURM: on 2 nodes, and in the
full profile the all-reduce also at 4 ranks on 4 nodes of 1. Under SLURM they run across the real nodes
when the allocation has more than one.

Every CSV row starts with the machine metadata: host, date, git commit, MPI version,
cores, then the ranks and nodes of that run. Plots: Benchmarks/scripts/plots.py.
"""

import argparse
import csv
import datetime
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")
CLUSTER = os.path.join(ROOT, "Benchmarks", "cluster")

PROFILES = {
    # Seconds: proves every suite runs end to end (tests, the SLURM job check).
    "smoke": dict(allreduce_ranks=[2], max_bytes="1M", step_factor=16, iterations=20, cluster_max_bytes="1M",
                  ddp_models=["lenet"], ddp_ranks=[1, 2], ddp_steps=8, bucket_mb=[1], efficiency_rounds=1, efficiency_steps=8,
                  pipe_stages=[1, 2], pipe_micro=[1, 4], pipe_steps=4, p2p_max_bytes="4M", repeats=1,
                  spread_nodes=False, compress_models=["lenet"], compressors=["none", "powersgd:2"],
                  compress_steps=dict(lenet=8, mlp=4), compress_links=[], compress_rounds=1,
                  ps_modes=[], ps_stragglers=[], ps_epochs=1, ps_steps=8, ps_eval_every=4,
                  tune_model=["--model", "mlp", "--hidden", "64"], tune_ranks=[1, 2], tune_cluster_ranks=[2],
                  tune_grid=["lr=0.01,0.1"], tune_scaling=["--cv", "2", "--steps", "6"],
                  tune_space=["lr=0.01,0.1", "momentum=0,0.9"], tune_max_epochs=2, tune_reduction=2,
                  fed_model=["--model", "mlp", "--hidden", "32"], fed_partitions=["iid"], fed_target=0.5,
                  fed_configs=[("fedsgd", None, None, 4, 0.5), ("fedavg", 1, 50, 2, 0.1)], fed_eval_every=2),
    # Under 5 minutes on 2 cores: every sweep, coarser.
    # (It took 6 m 17 s with factor-4 sizes to 64 MiB, the cluster's sweeps to 2 MiB, p2p
    # to 64 MiB and 20 DDP steps: the cluster's large messages crawl over its links.)
    "quick": dict(allreduce_ranks=[2, 4], max_bytes="16M", calibrate_iterations=40, step_factor=8, iterations=None, cluster_max_bytes="256K",
                  ddp_models=["lenet", "mlp"], ddp_ranks=[1, 2, 4], ddp_steps=12, bucket_mb=[1, 25],
                  efficiency_rounds=2, efficiency_steps=300,
                  pipe_stages=[1, 2, 3, 4], pipe_micro=[1, 2, 4, 8, 16], pipe_steps=12, p2p_max_bytes="4M", repeats=1,
                  spread_nodes=False, compress_models=["mlp"], compressors=["none", "fp16", "powersgd:4"],
                  compress_steps=dict(lenet=40, mlp=6), compress_links=["1gbit"], compress_rounds=1,
                  ps_modes=[], ps_stragglers=[], ps_epochs=1, ps_steps=None, ps_eval_every=50,
                  tune_ranks=[], tune_cluster_ranks=[], tune_space=None, fed_configs=[]),
    # The full sweep behind docs/benchmarks.md.
    "full": dict(allreduce_ranks=[2, 4], max_bytes="64M", step_factor=2, iterations=None, cluster_max_bytes="16M",
                 ddp_models=["lenet", "mlp"], ddp_ranks=[1, 2, 4], ddp_steps=80, bucket_mb=[0.5, 1, 2, 4, 8, 25, 100],
                 # One epoch per run (937 steps of 64): 80 steps last a fifth of a second.
                 efficiency_rounds=5, efficiency_steps=937,
                 pipe_stages=[1, 2, 3, 4], pipe_micro=[1, 2, 4, 8, 16], pipe_steps=30, p2p_max_bytes="64M", repeats=3,
                 spread_nodes=True, compress_models=["lenet", "mlp"],
                 compressors=["none", "fp16", "bf16", "powersgd:2", "powersgd:4", "topk:0.01"],
                 compress_steps=dict(lenet=300, mlp=16), compress_links=["1gbit", "4gbit"], compress_rounds=2,
                 # Stragglers: none, transient (P:F), one persistent (worker rank R:F).
                 ps_modes=["bsp", "ssp:1", "ssp:2", "ssp:4", "ssp:8", "asp"], ps_stragglers=["none", "0.2:4", "4:3"],
                 ps_epochs=3, ps_steps=None, ps_eval_every=50,
                 # 8 trials of one LeNet epoch per fold at 1/2/4 ranks; ASHA (rungs 1, 3, 9
                 # epochs) against all 27 configurations trained for 9 epochs.
                 # The course's exercise: at least 12 trials, 1 epoch each, 3-fold; one thread per
                 # rank at every rank count (`tune` passes --threads 1; 2 threads are slower on LeNet).
                 tune_model=["--model", "lenet"], tune_ranks=[1, 2, 4], tune_cluster_ranks=[2, 4],
                 tune_grid=["lr=0.02,0.05,0.1", "momentum=0,0.9", "batch-size=32,64"],
                 tune_scaling=["--cv", "3", "--epochs", "1"],
                 tune_space=["lr=0.003,0.01,0.03", "momentum=0,0.5,0.9", "batch-size=32,64,128"],
                 tune_max_epochs=9, tune_reduction=3,
                 # The 27 x 9 epochs of the full grid would take LeNet 35 minutes here; a 256-wide MLP 6.
                 tune_schedulers_model=["--model", "mlp", "--hidden", "256"],
                 # FedSGD needs hundreds of rounds where FedAvg needs tens. Full-batch steps on LeNet
                 # leave the starting plateau and then blow up at lr 0.3 and 0.5 (back to 10%);
                 # 0.15 is the largest probed rate that keeps going (75% at round 360 on IID).
                 fed_model=["--model", "lenet"], fed_partitions=["iid", "shards:2"], fed_target=0.70,
                 # (algorithm, E, B, rounds, lr)
                 fed_configs=[("fedsgd", None, None, 500, 0.15), ("fedavg", 1, 50, 100, 0.1), ("fedavg", 5, 50, 50, 0.1),
                              ("fedavg", 1, 10, 60, 0.1), ("fedavg", 5, 10, 40, 0.1)], fed_eval_every=2),
}

# The models: LeNet-5 (62k parameters, compute-bound) and an MLP with 10M parameters
# (40 MB of gradients per step for little arithmetic: communication-bound). Every
# training run uses one BLAS thread per rank, so speedups count ranks, not threads.
DDP_MODELS = {
    "lenet": dict(args=["--model", "lenet"], strong_global_batch=256, weak_batch_per_rank=64),
    "mlp": dict(args=["--model", "mlp", "--hidden", "2048,2048,2048"], strong_global_batch=128, weak_batch_per_rank=32),
}
# The pipeline sweep's model, and one whose two stages cost the same to train: fc1 + fc2
# (2·784·1024 + 3·1024² multiply-adds per item; fc1 computes no input gradient) against
# fc3 + fc4 (3·1024·1536 + 3·1536·10). The 1024x4 mlp splits 4.76 M : 6.33 M at best, so
# its bubble is the formula's plus the imbalance's.
PIPE_MODELS = {"mlp-1024x4": ["--model", "mlp", "--hidden", "1024,1024,1024,1024", "--batch-size", "256"],
               "mlp-balanced": ["--model", "mlp", "--hidden", "1024,1024,1536", "--batch-size", "256"]}

META_FIELDS = ["host", "date", "git_commit", "mpi_version", "cores"]
SUITES = ["p2p", "allreduce", "ddp", "pipeline", "compression", "ps", "tune", "fed"]
# One of tune's two sweeps alone (the other's rows are kept); not part of the default.
PARTIAL_SUITES = ["tune-scaling", "tune-schedulers"]


def machine_metadata():
    def output(*command):
        try:
            return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = output("git", "rev-parse", "--short=12", "HEAD") or "unknown"
    if output("git", "status", "--porcelain", "--untracked-files=no"):
        commit += "-dirty"
    mpi = next((line for line in output("mpirun", "--version").splitlines() if line.strip()), "unknown")
    return dict(host=socket.gethostname(), date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                git_commit=commit, mpi_version=mpi.replace("mpirun (Open MPI)", "Open MPI").strip(),
                cores=os.cpu_count())


class Failure(Exception):
    pass


class Bench:
    def __init__(self, args):
        self.args = args
        self.profile = PROFILES[args.profile]
        self.meta = machine_metadata()
        self.out = args.out
        self.work = tempfile.mkdtemp(prefix="chorus-bench-")
        self.runs = 0
        self.env = dict(os.environ)
        # Root in containers and CI; more ranks than cores; waiting ranks yield the core.
        self.env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                        OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_mpi_yield_when_idle="1")
        self.slurm_nodes = int(os.environ.get("SLURM_JOB_NUM_NODES", "0") or 0)

    # -- running ----------------------------------------------------------------

    def launch(self, ranks, placement, ranks_per_node=1):
        """The command prefix that starts `ranks` ranks at this placement."""
        if placement == "simulated-cluster":
            return [os.path.join(CLUSTER, "cluster-mpirun"), "-n", str(ranks), "--npernode", str(ranks_per_node)]
        if self.args.launcher == "srun":
            spread = ["-N", "1"] if placement == "one-node" else ["--ntasks-per-node", str(ranks_per_node)]
            return ["srun", "--mpi=pmix", "-n", str(ranks)] + spread
        return ["mpirun", "-n", str(ranks)]

    def run(self, label, command, timeout=600):
        self.runs += 1
        started = time.time()
        print(f"[{self.runs}] {label} ...", end="", flush=True)
        try:
            result = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(" timed out")
            raise Failure(f"{label}: no result after {timeout} s: {' '.join(command)}")
        if result.returncode != 0:
            print(f" failed (exit {result.returncode})")
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise Failure(f"{label}: exit {result.returncode}: {' '.join(command)}\n{tail}")
        print(f" {time.time() - started:.1f} s", flush=True)
        return result.stdout

    def write(self, name, fields, rows, keep=None):
        """Writes (or, with --append, extends) results/<name>.csv atomically; `keep`
        picks rows of the existing file to keep ahead of the new ones."""
        path = os.path.join(self.out, name + ".csv")
        columns = META_FIELDS + fields
        existing = []
        if (self.args.append or keep) and os.path.exists(path):
            with open(path, newline="") as f:
                existing = [row for row in csv.DictReader(f) if self.args.append or keep(row)]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in existing + [dict(self.meta, **row) for row in rows]:
            writer.writerow(row)
        temporary = path + ".tmp"
        with open(temporary, "w") as f:
            f.write(text.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
        print(f"wrote {os.path.relpath(path, ROOT)} ({len(rows)} rows)")

    def placements(self):
        """Where the multi-node sweeps run: one node always; simulated or real nodes when available."""
        places = ["one-node"]
        if self.slurm_nodes > 1:
            places.append("slurm-nodes")
        elif self.args.launcher == "mpirun" and self.args.cluster != "off" and cluster_possible():
            places.append("simulated-cluster")
        elif self.args.cluster == "on":
            raise Failure("--cluster on: the simulated cluster needs root and network namespaces")
        return places

    # -- suites -------------------------------------------------------------------

    def p2p(self, placement):
        """Two ranks measure the links (on one node, or one rank per node); on one
        node the all-reduce sweep's larger rank counts also measure a ring step with
        every rank busy, which is what more ranks than cores cost."""
        csv_path = os.path.join(self.work, "p2p.csv")
        rows = []
        for ranks in [2] + ([r for r in self.profile["allreduce_ranks"] if r > 2] if placement == "one-node" else []):
            ranks_per_node = 1 if placement != "one-node" else ranks
            command = self.launch(ranks, placement, ranks_per_node) + [
                f"{BIN}/p2p-bench", "--max-bytes", self.profile["p2p_max_bytes"], "--step-factor", "4", "--csv", csv_path]
            runs = self.repeated(f"p2p ping-pong, {ranks} ranks, {placement}", command, csv_path, placement)
            rows += fastest(runs, key=("measurement", "bytes"), time="time_us")
        return [dict(row, placement=placement, link=self.link(placement)) for row in rows]

    def allreduce(self, ranks, placement, ranks_per_node=None):
        csv_path = os.path.join(self.work, "allreduce.csv")
        ranks_per_node = ranks_per_node or max(1, ranks // 2)
        algorithms = "ring,hierarchical,recursive-doubling,auto,mpi"
        max_bytes = self.profile["max_bytes"]
        if placement == "one-node":
            algorithms = "shared-memory," + algorithms
        else:
            max_bytes = self.profile["cluster_max_bytes"]
        command = self.launch(ranks, placement, ranks_per_node) + [
            f"{BIN}/allreduce-bench", "--min-bytes", "4", "--max-bytes", max_bytes, "--step-factor",
            str(self.profile["step_factor"]), "--algorithms", algorithms, "--csv", csv_path]
        if self.profile["iterations"]:
            command += ["--iterations", str(self.profile["iterations"])]
        where = placement if placement == "one-node" else f"{placement}, {ranks_per_node} per node"
        runs = self.repeated(f"all-reduce sweep, {ranks} ranks, {where}", command, csv_path, placement, timeout=1200)
        rows = fastest(runs, key=("algorithm", "bytes"), time="time_us_max")
        return [dict(row, placement=placement, link=self.link(placement)) for row in rows]

    def calibrate(self, ranks):
        """`allreduce-bench --calibrate` at `ranks` ranks on this node, into the results
        folder's allreduce.table (one table for every rank count, for --allreduce-table)."""
        table = os.path.join(self.out, "allreduce.table")
        command = self.launch(ranks, "one-node", ranks) + [
            f"{BIN}/allreduce-bench", "--min-bytes", "4", "--max-bytes", self.profile["max_bytes"], "--step-factor",
            str(self.profile["step_factor"]), "--no-memcpy", "--calibrate", table]
        iterations = self.profile.get("calibrate_iterations") or self.profile["iterations"]
        if iterations:
            command += ["--iterations", str(iterations)]
        self.run(f"all-reduce calibration, {ranks} ranks", command, timeout=1200)

    def repeated(self, label, command, csv_path, placement, timeout=600):
        """The CSV rows of each of the profile's repeats of a one-node measurement.
        This machine has phases of tens of seconds in which memory-bound work runs 2-3x
        slower; a repeat a minute later usually misses them. Runs across nodes take
        minutes and are bound by the link, so they run once."""
        repeats = self.profile["repeats"] if placement == "one-node" else 1
        runs = []
        for k in range(repeats):
            self.run(label + (f" (repeat {k + 1} of {repeats})" if repeats > 1 else ""), command, timeout=timeout)
            runs.append(read_csv(csv_path))
        return runs

    def ddp(self, model, ranks, scaling, overlap, bucket_mb, placement="one-node", sweep="scaling"):
        spec = DDP_MODELS[model]
        batch = spec["weak_batch_per_rank"] if scaling == "weak" else spec["strong_global_batch"] // ranks
        metrics = os.path.join(self.work, "ddp.json")
        command = self.launch(ranks, placement, max(1, ranks // 2)) + [f"{BIN}/ddp-train"] + spec["args"] + [
            "--steps", str(self.profile["ddp_steps"]), "--batch-size", str(batch), "--bucket-mb", str(bucket_mb),
            "--threads", "1", "--log-every", "1000000", "--metrics-json", metrics] + self.dataset_args() + ([] if overlap else ["--no-overlap"])
        label = f"ddp-train {model}, {ranks} rank(s), {scaling}, batch {batch}/rank, {'overlap' if overlap else 'no overlap'}, bucket {bucket_mb} MiB, {placement}"
        self.run(label, command)
        with open(metrics) as f:
            m = json.load(f)
        return dict(model=model, sweep=sweep, scaling=scaling, placement=placement, link=self.link(placement),
                    ranks=m["ranks"], nodes=m["nodes"], overlap=str(overlap).lower(), bucket_mb=bucket_mb,
                    buckets=m["buckets"], bucket_bytes=" ".join(str(b) for b in m["bucket_bytes"]),
                    batch_per_rank=m["batch_per_rank"], global_batch=m["global_batch"],
                    steps=m["steps"], parameters=m["parameters"], allreduce=m["allreduce_resolved"],
                    samples_per_sec=m["samples_per_sec"], step_seconds=m["step_seconds"], comm_seconds=m["comm_seconds"],
                    exposed_comm_seconds=m["exposed_comm_seconds"], overlap_fraction=m["overlap_fraction"])

    def pipeline(self, stages, microbatches, schedule, model="mlp-1024x4"):
        metrics = os.path.join(self.work, "pipe.json")
        command = self.launch(stages, "one-node") + [f"{BIN}/pipe-train"] + PIPE_MODELS[model] + [
            "--stages", str(stages), "--microbatches", str(microbatches), "--schedule", schedule,
            "--steps", str(self.profile["pipe_steps"]), "--threads", "1", "--log-every", "1000000", "--metrics-json", metrics] + self.dataset_args()
        self.run(f"pipe-train {model}, {stages} stage(s), {microbatches} micro-batch(es), {schedule}", command)
        with open(metrics) as f:
            m = json.load(f)
        return dict(model=m["model"], ranks=m["ranks"], nodes=1, stages=stages, microbatches=microbatches, schedule=schedule,
                    batch_size=m["batch_size"], steps=m["steps"], samples_per_sec=m["samples_per_sec"],
                    bubble_measured=m["bubble_fraction_measured"], bubble_stage_times=m["bubble_fraction_stage_times"],
                    bubble_theory=m["bubble_fraction_theory"], peak_stored_microbatches=max(m["peak_stored_activations"]))

    def efficiency_rounds(self):
        """LeNet at 1 rank, then at 2 with the same batch per rank, round after round: the
        two-rank efficiency is each round's ratio, so a slow phase of the machine (tens
        of seconds here) lands on both runs of a round rather than on one row."""
        rows = []
        for round_ in range(1, self.profile["efficiency_rounds"] + 1):
            for ranks in [1, 2]:
                metrics = os.path.join(self.work, "efficiency.json")
                command = self.launch(ranks, "one-node") + [f"{BIN}/ddp-train"] + DDP_MODELS["lenet"]["args"] + [
                    "--steps", str(self.profile["efficiency_steps"]), "--batch-size", str(DDP_MODELS["lenet"]["weak_batch_per_rank"]),
                    "--threads", "1", "--log-every", "1000000", "--metrics-json", metrics] + self.dataset_args()
                self.run(f"ddp-train lenet, {ranks} rank(s), efficiency round {round_}", command)
                with open(metrics) as f:
                    m = json.load(f)
                rows.append(dict(round=round_, model="lenet", ranks=m["ranks"], batch_per_rank=m["batch_per_rank"],
                                 steps=m["steps"], samples_per_sec=m["samples_per_sec"]))
        return rows

    def compression(self, model, compressor, placement, bandwidth, round_):
        """One ddp-train run with `compressor`: 2 ranks, on one node or one per node of
        the simulated cluster, one BLAS thread each (2 busy processes on 2 cores)."""
        spec = DDP_MODELS[model]
        metrics = os.path.join(self.work, "compress.json")
        command = self.launch(2, placement, 1) + [f"{BIN}/ddp-train"] + spec["args"] + [
            "--steps", str(self.profile["compress_steps"][model]), "--batch-size", str(spec["weak_batch_per_rank"]),
            "--compress", compressor, "--threads", "1", "--log-every", "1000000", "--metrics-json", metrics] + self.dataset_args()
        if compressor.startswith("powersgd"):
            command += ["--powersgd-start-step", "0"]  # the steady state: every step compressed
        link = self.link(placement) if placement == "one-node" else f"veth {bandwidth}"
        self.run(f"ddp-train {model} --compress {compressor}, 2 ranks, {link}, round {round_ + 1}", command, timeout=900)
        with open(metrics) as f:
            m = json.load(f)
        return dict(model=model, compress=compressor, placement=placement, link=link, round=round_ + 1, ranks=m["ranks"],
                    nodes=m["nodes"], parameters=m["parameters"], batch_per_rank=m["batch_per_rank"], steps=m["steps"],
                    samples_per_sec=m["samples_per_sec"], step_seconds=m["step_seconds"],
                    bytes_sent_per_step=m["bytes_sent_per_step"], payload_bytes_per_step=m["payload_bytes_per_step"],
                    compression_ratio=m["compression_ratio"], compress_seconds=m["compress_seconds"],
                    decompress_seconds=m["decompress_seconds"], comm_seconds=m["comm_seconds"],
                    exposed_comm_seconds=m["exposed_comm_seconds"], test_accuracy=m.get("test_accuracy", ""))

    def compression_sweep(self, cluster_ok):
        """Rounds of every compressor, in order, so each is measured next to the
        uncompressed run of its round: one node, then each simulated link rate."""
        p = self.profile
        places = [("one-node", None)] + ([("simulated-cluster", bw) for bw in p["compress_links"]] if cluster_ok else [])
        rows = []
        for placement, bandwidth in places:
            with cluster(self, placement, nodes=2, ranks_per_node=1, bandwidth=bandwidth):
                for model in p["compress_models"]:
                    for round_ in range(p["compress_rounds"]):
                        for compressor in p["compressors"]:
                            rows.append(self.compression(model, compressor, placement, bandwidth, round_))
        return rows

    def parameter_server(self, mode, stragglers, target=0.85):
        """One LeNet run, 4 workers (and 1 server for ps-train, `mode` "ddp" for ddp-train
        at 4 ranks): throughput, and the training seconds to `target` test accuracy from
        the evaluation curve."""
        p = self.profile
        metrics = os.path.join(self.work, "ps.json")
        common = ["--model", "lenet", "--epochs", str(p["ps_epochs"]), "--threads", "1", "--log-every", "1000000",
                  "--eval-every", str(p["ps_eval_every"]), "--metrics-json", metrics] + self.dataset_args()
        if p["ps_steps"]:
            common += ["--steps", str(p["ps_steps"])]
        if mode == "ddp":
            command, label = self.launch(4, "one-node") + [f"{BIN}/ddp-train"] + common, "ddp-train, 4 ranks"
        else:
            name, _, bound = mode.partition(":")
            command = self.launch(5, "one-node") + [f"{BIN}/ps-train", "--servers", "1", "--mode", name] + common
            if bound:
                command += ["--staleness", bound]
            if stragglers != "none":
                command += ["--straggle" if "." in stragglers.split(":")[0] else "--slow-worker", stragglers]
            label = f"ps-train --mode {mode}, 1 server + 4 workers, stragglers {stragglers}"
        self.run(label, command, timeout=1800)
        with open(metrics) as f:
            m = json.load(f)
        reached = [e["train_seconds"] for e in m["evaluations"] if (e["test_accuracy"] or 0) >= target]
        return dict(tool=m["tool"], mode=mode if mode != "ddp" else "allreduce", stragglers=stragglers, ranks=m["ranks"],
                    workers=m.get("workers", m["ranks"]), epochs=m["epochs"], steps=m["steps"],
                    samples_per_sec=m["samples_per_sec"], train_seconds=m["train_seconds"],
                    seconds_to_85=reached[0] if reached else "", test_accuracy=m["test_accuracy"],
                    best_accuracy=max((e["test_accuracy"] or 0) for e in m["evaluations"]),
                    max_staleness=m.get("max_staleness", 0),
                    blocked_seconds=sum(m.get("blocked_seconds", [0])) / max(len(m.get("blocked_seconds", [0])), 1),
                    worker_iterations=" ".join(map(str, m.get("worker_iterations", []))),
                    server_busy_fraction=(m.get("server_busy_fraction") or [""])[0])

    def parameter_server_sweep(self):
        """ddp-train first (the baseline without stragglers), then every mode under each
        straggler scenario, in one run so the ratios are of the same machine state."""
        p = self.profile
        rows = [self.parameter_server("ddp", "none")] if p["ps_modes"] else []
        for stragglers in p["ps_stragglers"]:
            for mode in p["ps_modes"]:
                rows.append(self.parameter_server(mode, stragglers))
        return rows

    def tune(self, label, ranks, placement, ranks_per_node, space, extra, name, model=None):
        """One tune run (one rank per trial, no refit: the search alone): its metrics and
        its results file's rows."""
        results = os.path.join(self.work, f"tune-{name}.csv")
        metrics = os.path.join(self.work, f"tune-{name}.json")
        command = self.launch(ranks, placement, ranks_per_node) + [f"{BIN}/tune"] + [
            a for dimension in space for a in ("--grid", dimension)] + extra + [
            "--no-refit", "--results", results, "--metrics-json", metrics, "--threads", "1",
            "--log-every", "1000000"] + (model or self.profile["tune_model"]) + self.dataset_args()
        self.run(label, command, timeout=7200)
        with open(metrics) as f:
            return json.load(f), read_csv(results)

    def tune_scaling(self, ranks, placement):
        """The grid's search seconds at `ranks` ranks, one trial per rank (two ranks per
        node across nodes)."""
        p = self.profile
        per_node = ranks if placement == "one-node" else max(1, ranks // 2)
        m, _ = self.tune(f"tune grid, {ranks} rank(s), {placement}", ranks, placement, per_node,
                         p["tune_grid"], p["tune_scaling"], f"scaling-{placement}-{ranks}")
        return self.tune_row(m, "scaling", ranks, placement, -(-ranks // per_node))

    def tune_schedulers(self):
        """The full grid (FIFO: every configuration to the last epoch) and ASHA on the
        same space at 2 ranks, one trial each: ASHA's best against the grid's, the grid's
        own score of ASHA's pick, and the training samples each spent."""
        p = self.profile
        epochs = str(p["tune_max_epochs"])
        held_out = ["--validation-fraction", "0.1"]
        model = p.get("tune_schedulers_model")
        grid, grid_rows = self.tune(f"tune full grid to {epochs} epochs, 2 ranks", 2, "one-node", 2, p["tune_space"],
                                    held_out + ["--epochs", epochs], "fifo", model)
        asha, _ = self.tune(f"tune ASHA to {epochs} epochs, 2 ranks", 2, "one-node", 2, p["tune_space"],
                            held_out + ["--scheduler", "asha", "--max-epochs", epochs, "--grace-epochs", "1",
                                        "--reduction-factor", str(p["tune_reduction"])], "asha", model)

        def grid_score(parameters):
            for row in grid_rows:
                if all(row.get(f"param_{k}") == v for k, v in (parameters or {}).items()):
                    return row["mean_score"]
            return ""
        rows = []
        for m in [grid, asha]:
            row = self.tune_row(m, "schedulers", 2, "one-node", 1, model)
            row.update(grid_score_of_best=grid_score(m.get("best_parameters")), grid_best_score=grid.get("best_score", ""))
            rows.append(row)
        return rows

    def tune_row(self, m, sweep, ranks, placement, nodes, model=None):
        parameters = m.get("best_parameters") or {}
        return dict(model=" ".join((model or self.profile["tune_model"])[1:]).replace("mlp --hidden ", "mlp "), sweep=sweep, placement=placement, link=self.link(placement), ranks=ranks, nodes=nodes, groups=m["groups"],
                    scheduler=m["scheduler"], trials=m["trials"], trials_stopped=m["trials_stopped"],
                    train_samples=m["train_samples"], search_seconds=m["search_seconds"], busy_fraction=m["busy_fraction"],
                    best_trial=m.get("best_trial", ""), best_parameters=" ".join(f"{k}={v}" for k, v in sorted(parameters.items())),
                    best_score=m.get("best_score", ""), default_score=m.get("default_score", ""))

    def partition_histograms(self):
        """`fed-train --describe-partition` of each scheme over 10 clients, as
        results/partition-<scheme>.csv (make plots draws them)."""
        for scheme in ["iid", "shards:2", "dirichlet:0.5", "labels:2"]:
            text = self.run(f"fed-train --describe-partition {scheme}", self.launch(1, "one-node") + [
                            f"{BIN}/fed-train", "--describe-partition", "--clients", "10",
                            "--partition", scheme] + self.dataset_args())
            path = os.path.join(self.out, "partition-" + scheme.replace(":", "-") + ".csv")
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.replace(path + ".tmp", path)

    def federated_sweep(self):
        """Every configuration on every partition, 2 ranks; the test accuracy every
        `fed_eval_every` rounds as the curve (round:accuracy pairs)."""
        p = self.profile
        rows = []
        for partition in p["fed_partitions"]:
            for algorithm, epochs, batch, rounds, lr in p["fed_configs"]:
                metrics, curve = os.path.join(self.work, "fed.json"), os.path.join(self.work, "fed-rounds.csv")
                local = ["--local-epochs", str(epochs), "--local-batch", str(batch)] if algorithm != "fedsgd" else []
                # McMahan et al. tuned the rate per setting; plain SGD here, one rate per algorithm.
                command = self.launch(2, "one-node") + [f"{BIN}/fed-train", "--clients", "100", "--fraction", "0.1",
                    "--partition", partition, "--algorithm", algorithm, "--rounds", str(rounds), "--optimizer", "sgd",
                    "--momentum", "0", "--lr", str(lr), "--eval-every", str(p["fed_eval_every"] * (3 if algorithm == "fedsgd" else 1)), "--log-every", "1000000",
                    "--target-accuracy", str(p["fed_target"]), "--threads", "1", "--metrics-json", metrics,
                    "--rounds-csv", curve] + local + p["fed_model"] + self.dataset_args()
                label = f"fed-train {partition} {algorithm}" + (f" E={epochs} B={batch}" if local else " (E=1, B=all)")
                self.run(label, command, timeout=7200)
                with open(metrics) as f:
                    m = json.load(f)
                points = [(int(r["round"]), float(r["test_accuracy"])) for r in read_csv(curve) if r["test_accuracy"]]
                rows.append(dict(partition=partition, algorithm=algorithm, lr=lr, local_epochs=m["local_epochs"],
                                 local_batch=m["local_batch"], ranks=m["ranks"], rounds=m["steps"], target_accuracy=p["fed_target"],
                                 rounds_to_target=m["rounds_to_target"] if m["rounds_to_target"] is not None else "",
                                 final_accuracy=m["test_accuracy"], best_accuracy=max(a for _, a in points) if points else "",
                                 client_samples=m["client_samples"], bytes_up=m["bytes_up"], bytes_down=m["bytes_down"],
                                 wall_seconds=m["wall_seconds"], curve=" ".join(f"{r}:{a:.4f}" for r, a in points)))
        return rows

    def dataset_args(self):
        # The real data when installed (make deps installs it); otherwise the synthetic
        # set of the same shapes, which costs the same per step.
        return [] if os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") else ["--dataset", "synthetic"]

    def link(self, placement):
        if placement == "simulated-cluster":
            return f"veth {self.args.cluster_bandwidth}"
        if placement == "slurm-nodes":
            return "cluster network"
        return "shared memory"

    # -- the sweep ----------------------------------------------------------------

    def main(self):
        os.makedirs(self.out, exist_ok=True)
        suites = self.args.suites.split(",")
        unknown = set(suites) - set(SUITES + PARTIAL_SUITES)
        if unknown:
            raise Failure(f"--suites: unknown suite(s) {', '.join(sorted(unknown))} (choose from {', '.join(SUITES + PARTIAL_SUITES)})")
        needed = ["p2p-bench", "allreduce-bench", "ddp-train", "pipe-train", "ps-train", "tune", "fed-train"]
        missing = [b for b in needed if not os.access(os.path.join(BIN, b), os.X_OK)]
        if missing:
            raise Failure(f"no release build of {', '.join(missing)} in {BIN}; run make build")
        places = self.placements()
        print(f"bench: profile {self.args.profile}, suites {','.join(suites)}, placements {', '.join(places)}; "
              f"{self.meta['host']}, {self.meta['cores']} cores, {self.meta['mpi_version']}, commit {self.meta['git_commit']}")
        started = time.time()
        p = self.profile
        p2p_rows, allreduce_rows, ddp_rows, tune_rows = [], [], [], []
        for placement in places:
            with cluster(self, placement):
                if "p2p" in suites:
                    p2p_rows += self.p2p(placement)
                if "allreduce" in suites:
                    for ranks in p["allreduce_ranks"]:
                        allreduce_rows += self.allreduce(ranks, placement)
                        if placement == "one-node":
                            self.calibrate(ranks)
                    if placement == "simulated-cluster" and p["spread_nodes"]:
                        # A rank alone on each of 4 nodes: every ring step sends to one
                        # node and receives from another (the cost model's r = 1, p > 2).
                        allreduce_rows += self.allreduce(4, placement, ranks_per_node=1)
                if "ddp" in suites and placement != "one-node":
                    # Across nodes: where overlap pays, on the communication-heavy model.
                    for ranks in [2, 4]:
                        for overlap in [True, False]:
                            ddp_rows.append(self.ddp("mlp", ranks, "weak", overlap, 25, placement=placement, sweep="nodes"))
                if "tune" in suites or "tune-scaling" in suites:
                    for ranks in p["tune_ranks"] if placement == "one-node" else p["tune_cluster_ranks"]:
                        tune_rows.append(self.tune_scaling(ranks, placement))
        if "p2p" in suites:
            self.write("p2p", ["placement", "link", "measurement", "ranks", "nodes", "same_node", "bytes", "iterations", "time_us"], p2p_rows)
        if "allreduce" in suites:
            self.write("allreduce", ["placement", "link", "algorithm", "ranks", "nodes", "bytes", "iterations", "time_us_min",
                                     "time_us_avg", "time_us_max", "algbw_GBps", "busbw_GBps", "correct"], allreduce_rows)
        if "ddp" in suites:
            for model in p["ddp_models"]:
                for ranks in p["ddp_ranks"]:
                    for scaling in ["strong", "weak"]:
                        for overlap in ([True, False] if ranks > 1 else [True]):
                            ddp_rows.append(self.ddp(model, ranks, scaling, overlap, 25))
            for ranks in [r for r in p["ddp_ranks"] if r > 1]:
                for bucket in p["bucket_mb"]:
                    if bucket != 25:
                        ddp_rows.append(self.ddp(p["ddp_models"][-1], ranks, "weak", True, bucket, sweep="buckets"))
            self.write("ddp-efficiency", ["round", "model", "ranks", "batch_per_rank", "steps", "samples_per_sec"],
                       self.efficiency_rounds())
            self.write("ddp", ["model", "sweep", "scaling", "placement", "link", "ranks", "nodes", "overlap", "bucket_mb", "buckets",
                               "bucket_bytes", "batch_per_rank", "global_batch", "steps", "parameters", "allreduce", "samples_per_sec",
                               "step_seconds", "comm_seconds", "exposed_comm_seconds", "overlap_fraction"], ddp_rows)
        if "pipeline" in suites:
            rows = []
            for stages in p["pipe_stages"]:
                for microbatches in p["pipe_micro"]:
                    # One stage has no bubble and no schedule to speak of: one run per M.
                    for schedule in (["1f1b"] if stages == 1 else ["gpipe", "1f1b"]):
                        rows.append(self.pipeline(stages, microbatches, schedule))
            if 2 in p["pipe_stages"]:
                for microbatches in p["pipe_micro"]:
                    for schedule in ["gpipe", "1f1b"]:
                        rows.append(self.pipeline(2, microbatches, schedule, model="mlp-balanced"))
            self.write("pipeline", ["model", "ranks", "nodes", "stages", "microbatches", "schedule", "batch_size", "steps",
                                    "samples_per_sec", "bubble_measured", "bubble_stage_times", "bubble_theory",
                                    "peak_stored_microbatches"], rows)
        if "compression" in suites:
            rows = self.compression_sweep("simulated-cluster" in places)
            self.write("compression", ["model", "compress", "placement", "link", "round", "ranks", "nodes", "parameters",
                                       "batch_per_rank", "steps", "samples_per_sec", "step_seconds", "bytes_sent_per_step",
                                       "payload_bytes_per_step", "compression_ratio", "compress_seconds", "decompress_seconds",
                                       "comm_seconds", "exposed_comm_seconds", "test_accuracy"], rows)
        if "ps" in suites and self.profile["ps_modes"]:
            self.write("parameter-server", ["tool", "mode", "stragglers", "ranks", "workers", "epochs", "steps", "samples_per_sec",
                                            "train_seconds", "seconds_to_85", "test_accuracy", "best_accuracy", "max_staleness",
                                            "blocked_seconds", "worker_iterations", "server_busy_fraction"],
                       self.parameter_server_sweep())
        schedulers = p["tune_space"] and ("tune" in suites or "tune-schedulers" in suites)
        if tune_rows or schedulers:
            if schedulers:
                tune_rows += self.tune_schedulers()
            # One of the two sweeps alone keeps the other's rows from the file.
            sweeps = {row["sweep"] for row in tune_rows}
            self.write("tune", ["model", "sweep", "placement", "link", "ranks", "nodes", "groups", "scheduler", "trials", "trials_stopped",
                                "train_samples", "search_seconds", "busy_fraction", "best_trial", "best_parameters", "best_score",
                                "default_score", "grid_score_of_best", "grid_best_score"], tune_rows,
                       keep=None if "tune" in suites else (lambda row: row["sweep"] not in sweeps))
        if "fed" in suites:
            self.partition_histograms()
        if "fed" in suites and p["fed_configs"]:
            self.write("federated", ["partition", "algorithm", "lr", "local_epochs", "local_batch", "ranks", "rounds", "target_accuracy",
                                     "rounds_to_target", "final_accuracy", "best_accuracy", "client_samples", "bytes_up", "bytes_down",
                                     "wall_seconds", "curve"], self.federated_sweep())
        print(f"bench: {self.runs} runs in {time.time() - started:.0f} s; CSVs in {os.path.relpath(self.out, ROOT)}")


class cluster:
    """Brings the simulated cluster up for its placement and always down again."""

    def __init__(self, bench, placement, nodes=4, ranks_per_node=2, bandwidth=None):
        self.bench, self.placement = bench, placement
        self.nodes, self.ranks_per_node = nodes, ranks_per_node
        self.bandwidth = bandwidth or bench.args.cluster_bandwidth

    def __enter__(self):
        if self.placement == "simulated-cluster":
            # By default 4 nodes of 2 slots: runs place their ranks with --npernode (most use 2 nodes).
            env = dict(self.bench.env, NODES=str(self.nodes), RANKS_PER_NODE=str(self.ranks_per_node), BANDWIDTH=self.bandwidth)
            subprocess.run([os.path.join(CLUSTER, "cluster-up.sh")], env=env, check=True)
        return self

    def __exit__(self, *exc):
        if self.placement == "simulated-cluster":
            subprocess.run([os.path.join(CLUSTER, "cluster-down.sh")], capture_output=True)
        return False


def cluster_possible():
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    probe = subprocess.run(["ip", "netns", "add", "chorus-probe"], capture_output=True)
    if probe.returncode != 0:
        return False
    subprocess.run(["ip", "netns", "delete", "chorus-probe"], capture_output=True)
    return True


def fastest(runs, key, time):
    """Row by row, the repeat with the least time: the machine's slow phases (tens of
    seconds) only add time. Within one run each tool has already picked its round (the
    fastest, or the median where the ranks' turns on the cores are part of the cost).
    Rows keep the first run's order."""
    best = {}
    for rows in runs:
        for row in rows:
            k = tuple(row[f] for f in key)
            if k not in best or float(row[time]) < float(best[k][time]):
                best[k] = row
    return [best[tuple(row[f] for f in key)] for row in runs[0]]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick", help="sweep size (default: quick)")
    parser.add_argument("--out", default=os.path.join(ROOT, "Benchmarks", "results"), help="results folder")
    parser.add_argument("--suites", default=",".join(SUITES), help="comma-separated suites to run")
    parser.add_argument("--launcher", choices=["mpirun", "srun"], default="mpirun",
                        help="how to start ranks: mpirun, or srun --mpi=pmix inside a SLURM allocation")
    parser.add_argument("--cluster", choices=["auto", "on", "off"], default="auto",
                        help="the simulated cluster: when possible (auto), required (on) or never (off)")
    parser.add_argument("--cluster-bandwidth", default="4gbit", help="link rate of each simulated node (tc tbf)")
    parser.add_argument("--append", action="store_true", help="add rows to existing CSVs instead of replacing them")
    args = parser.parse_args()
    args.out = os.path.abspath(args.out)
    bench = Bench(args)
    try:
        bench.main()
    except Failure as failure:
        print(f"bench: error: {failure}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)


if __name__ == "__main__":
    main()
