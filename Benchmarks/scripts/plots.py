#!/usr/bin/env python3
"""Plots and summary tables from the CSVs of Benchmarks/bench.py.

    Benchmarks/scripts/plots.py --results Benchmarks/results --out docs/benchmarks \
        --doc docs/benchmarks.md

PNGs: all-reduce bus bandwidth vs size per algorithm (log-log), DDP speedup and
efficiency vs ranks with the ideal line, DDP step time split into compute and
exposed communication, pipeline bubble vs micro-batches with the theory curve and
the stages' measured times, and
the cost model: prediction vs measurement, and predicted scaling to 4,096 ranks; the
parameter server's time to accuracy; tune's search time against ranks with the ideal
line, and ASHA against the full grid.
With --doc, the tables between `<!-- results:begin -->` and `<!-- results:end -->`
in that Markdown file are replaced by those of this run.
"""

import argparse
import collections
import csv
import math
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import costmodel  # noqa: E402

ALGORITHM_STYLE = {
    "shared-memory": ("tab:green", "o"), "ring": ("tab:blue", "s"), "hierarchical": ("tab:purple", "D"),
    "recursive-doubling": ("tab:orange", "^"), "auto": ("black", "x"), "mpi": ("tab:red", "v"),
    "memcpy": ("grey", None),
}
ALGORITHM_LABEL = {"mpi": "MPI_Allreduce (Open MPI)", "auto": "Chorus auto", "memcpy": "memcpy (ceiling)"}


def read(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def curve_points(row):
    """A row's `curve` column, "round:accuracy round:accuracy ...", as (round, accuracy) pairs."""
    return [tuple(map(float, p.split(":"))) for p in row["curve"].split()]


def size_label(n):
    n = int(n)
    for unit, shift in [("GiB", 30), ("MiB", 20), ("KiB", 10)]:
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"


def size_axis(ax):
    ax.set_xscale("log", base=2)
    ticks = [4 << (4 * k) for k in range(7)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([size_label(t) for t in ticks])


class Report:
    def __init__(self, results, out):
        self.results, self.out = results, out
        self.tables = []
        os.makedirs(out, exist_ok=True)
        self.p2p = read(os.path.join(results, "p2p.csv"))
        self.allreduce = read(os.path.join(results, "allreduce.csv"))
        self.ddp = read(os.path.join(results, "ddp.csv"))
        self.ddp_efficiency = read(os.path.join(results, "ddp-efficiency.csv"))
        self.pipeline = read(os.path.join(results, "pipeline.csv"))
        self.compression = read(os.path.join(results, "compression.csv"))
        self.parameter_server = read(os.path.join(results, "parameter-server.csv"))
        self.tune = read(os.path.join(results, "tune.csv"))
        self.federated = read(os.path.join(results, "federated.csv"))
        self.niid_bench = read(os.path.join(results, "niid-bench.csv"))
        self.partitions = {}
        for name in sorted(os.listdir(results)) if os.path.isdir(results) else []:
            if name.startswith("partition-") and name.endswith(".csv"):
                with open(os.path.join(results, name)) as f:
                    lines = f.read().splitlines()
                self.partitions[name[len("partition-"):-4]] = (lines[0].lstrip("# "), list(csv.DictReader(lines[1:])))
        self.machine = None
        try:
            self.machine = costmodel.Machine.from_p2p(self.p2p) if self.p2p else None
        except ValueError as error:
            print(f"plots: no cost model: {error}")
        self.written = []

    def save(self, fig, name, rows=None):
        """Writes the figure; with `rows`, stamped with the machine and commits they come from."""
        if rows:
            fig.text(0.99, -0.01, self.metadata(rows), ha="right", va="top", fontsize=7, color="dimgrey")
        path = os.path.join(self.out, name)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.written.append(path)

    def metadata(self, own=None):
        for rows in ([own] if own else []) + [self.allreduce, self.ddp, self.ddp_efficiency, self.pipeline, self.p2p, self.compression,
                                               self.parameter_server, self.tune, self.federated, self.niid_bench]:
            if rows:
                r = rows[0]
                # A file can hold rows of several runs (a suite run in parts): name each.
                runs = sorted({(row["git_commit"], row["date"]) for row in rows}, key=lambda run: run[1])
                stamp = "; ".join(f"commit {commit}, {date}" for commit, date in runs)
                return f"{r['host']}, {r['cores']} cores, {r['mpi_version']}, {stamp}"
        return "no results"

    # -- all-reduce ---------------------------------------------------------------

    def allreduce_plots(self):
        groups = collections.OrderedDict()
        for r in self.allreduce:
            groups.setdefault((r["placement"], r["link"]), {}).setdefault((int(r["ranks"]), int(r["nodes"])), []).append(r)
        for (placement, link), by_ranks in groups.items():
            fig, axes = plt.subplots(1, len(by_ranks), figsize=(6.2 * len(by_ranks), 4.6), squeeze=False)
            for ax, ((ranks, nodes), rows) in zip(axes[0], sorted(by_ranks.items())):
                by_algorithm = collections.OrderedDict()
                for r in rows:
                    by_algorithm.setdefault(r["algorithm"], []).append(r)
                for algorithm, points in by_algorithm.items():
                    if algorithm == "memcpy" and placement != "one-node":
                        continue  # a local copy says nothing about a network-bound all-reduce
                    points.sort(key=lambda r: int(r["bytes"]))
                    color, marker = ALGORITHM_STYLE.get(algorithm, (None, "."))
                    ax.plot([int(r["bytes"]) for r in points], [max(float(r["busbw_GBps"]), 1e-5) for r in points],
                            color=color, marker=marker, markersize=4, linestyle="--" if algorithm == "memcpy" else "-",
                            label=ALGORITHM_LABEL.get(algorithm, algorithm))
                size_axis(ax)
                ax.set_yscale("log")
                ax.set_xlabel("message size (float32 sum, in place)")
                ax.set_ylabel("bus bandwidth (GB/s) = bytes/time x 2(p-1)/p")
                ax.set_title(f"{ranks} ranks on {nodes} node(s)")
                ax.grid(True, which="both", alpha=0.3)
                ax.legend(fontsize=8)
            fig.suptitle(f"All-reduce bus bandwidth, {placement} ({link})")
            self.save(fig, f"allreduce-{placement}.png", self.allreduce)

    def allreduce_table(self):
        lines = ["| placement | ranks | nodes | size | " + " | ".join(["shared-memory", "ring", "hierarchical", "recursive-doubling", "auto", "mpi"])
                 + " | auto vs MPI |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        keyed = collections.defaultdict(dict)
        for r in self.allreduce:
            keyed[(r["placement"], int(r["ranks"]), int(r["nodes"]), int(r["bytes"]))][r["algorithm"]] = float(r["time_us_max"])
        for (placement, ranks, nodes, n), times in sorted(keyed.items()):
            if n not in (4, 1 << 12, 1 << 16, 1 << 20, 1 << 22, 1 << 24, 1 << 26):
                continue
            cells = [f"{times[a]:.1f}" if a in times else "" for a in ["shared-memory", "ring", "hierarchical", "recursive-doubling", "auto", "mpi"]]
            ratio = f"{times['mpi'] / times['auto']:.2f}x" if "mpi" in times and times.get("auto") else ""
            lines.append(f"| {placement} | {ranks} | {nodes} | {size_label(n)} | " + " | ".join(cells) + f" | {ratio} |")
        self.tables.append(("All-reduce: time per call (µs, slowest rank)", "\n".join(lines)))
        # Across nodes: hierarchical against the flat ring.
        ratios = []
        for (placement, ranks, nodes, n), times in sorted(keyed.items()):
            if nodes > 1 and "ring" in times and "hierarchical" in times and n >= 1 << 16:
                ratios.append((placement, ranks, nodes, n, times["ring"] / times["hierarchical"]))
        if ratios:
            lines = ["| placement | ranks | nodes | size | ring / hierarchical time |", "|---|---|---|---|---|"]
            lines += [f"| {pl} | {p} | {nn} | {size_label(n)} | {x:.2f}x |" for pl, p, nn, n, x in ratios]
            self.tables.append(("Across nodes: hierarchical all-reduce against the flat ring (≥ 64 KiB)", "\n".join(lines)))

    # -- DDP ----------------------------------------------------------------------

    def ddp_scaling_plot(self):
        rows = [r for r in self.ddp if r["sweep"] == "scaling" and r["overlap"] == "true" and r["placement"] == "one-node"]
        if not rows:
            return
        fig, (speed_ax, eff_ax) = plt.subplots(1, 2, figsize=(12, 4.6))
        ranks_seen = set()
        for (model, scaling), style in zip([(m, s) for m in ["lenet", "mlp"] for s in ["strong", "weak"]],
                                           ["-o", "--o", "-s", "--s"]):
            # Strong: 1 rank runs the whole global batch; weak: the per-rank batch.
            points = sorted((int(r["ranks"]), float(r["samples_per_sec"])) for r in rows
                            if r["model"] == model and r["scaling"] == scaling)
            base = next((s for p, s in points if p == 1), None)
            if not base:
                continue
            xs = [p for p, _ in points]
            speedup = [s / base for _, s in points]
            ranks_seen.update(xs)
            label = f"{model}, {scaling} scaling"
            speed_ax.plot(xs, speedup, style, label=label)
            eff_ax.plot(xs, [s / p for s, p in zip(speedup, xs)], style, label=label)
        ideal = sorted(ranks_seen)
        speed_ax.plot(ideal, ideal, ":", color="grey", label="ideal (linear)")
        eff_ax.axhline(1.0, linestyle=":", color="grey", label="ideal")
        for ax, title, ylabel in [(speed_ax, "Speedup vs ranks", "samples/s relative to 1 rank"),
                                  (eff_ax, "Parallel efficiency", "speedup / ranks")]:
            ax.set_xlabel("ranks (one node)")
            ax.set_ylabel(ylabel)
            ax.set_xticks(ideal)
            ax.set_title(title)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
        cores = rows[0]["cores"]
        fig.suptitle(f"ddp-train scaling on one {cores}-core node (overlap on; beyond {cores} ranks the ranks share cores)")
        self.save(fig, "ddp-scaling.png", rows)

    def ddp_split_plot(self):
        rows = [r for r in self.ddp if r["sweep"] in ("scaling", "nodes") and int(r["ranks"]) > 1
                and (r["sweep"] == "nodes" or r["scaling"] == "weak")]
        if not rows:
            return
        rows.sort(key=lambda r: (r["placement"] != "one-node", r["model"], int(r["ranks"]), r["overlap"] != "true"))
        labels, compute, exposed = [], [], []
        for r in rows:
            step = float(r["step_seconds"]) * 1e3
            hidden = float(r["exposed_comm_seconds"]) / max(int(r["steps"]), 1) * 1e3
            labels.append(f"{r['model']} p={r['ranks']}\n{'2 nodes' if r['placement'] != 'one-node' else '1 node'}\n"
                          f"{'overlap' if r['overlap'] == 'true' else 'no overlap'}")
            exposed.append(min(hidden, step))
            compute.append(step - exposed[-1])
        fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(rows)), 4.8))
        xs = range(len(rows))
        ax.bar(xs, compute, label="compute (and hidden communication)", color="tab:blue")
        ax.bar(xs, exposed, bottom=compute, label="exposed communication", color="tab:red")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel("milliseconds per step")
        ax.set_title("ddp-train step time: compute vs exposed communication (weak scaling)")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
        self.save(fig, "ddp-step-split.png", rows)

    def ddp_bucket_plot(self):
        rows = [r for r in self.ddp if r["placement"] == "one-node" and r["overlap"] == "true" and r["scaling"] == "weak"
                and int(r["ranks"]) > 1 and r["model"] == "mlp" and r["sweep"] in ("buckets", "scaling")]
        if len({r["bucket_mb"] for r in rows}) < 2:
            return
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for ranks in sorted({int(r["ranks"]) for r in rows}):
            points = sorted((float(r["bucket_mb"]), float(r["step_seconds"]) * 1e3) for r in rows if int(r["ranks"]) == ranks)
            ax.plot([b for b, _ in points], [t for _, t in points], "-o", label=f"{ranks} ranks")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("bucket cap (MiB)")
        ax.set_ylabel("milliseconds per step")
        ax.set_title("ddp-train mlp (40 MB of gradients): bucket size")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        self.save(fig, "ddp-buckets.png", rows)

    def ddp_table(self):
        if not self.ddp:
            return
        lines = ["| model | sweep | placement | ranks | nodes | scaling | overlap | bucket MiB | batch/rank | samples/s | step ms | exposed comm ms | overlap fraction |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in self.ddp:
            steps = max(int(r["steps"]), 1)
            lines.append(f"| {r['model']} | {r['sweep']} | {r['placement']} | {r['ranks']} | {r['nodes']} | {r['scaling']} | {r['overlap']} | "
                         f"{r['bucket_mb']} | {r['batch_per_rank']} | {float(r['samples_per_sec']):,.0f} | {float(r['step_seconds']) * 1e3:.1f} | "
                         f"{float(r['exposed_comm_seconds']) / steps * 1e3:.1f} | {float(r['overlap_fraction']):.2f} |")
        self.tables.append(("ddp-train", "\n".join(lines)))

    # -- pipeline -----------------------------------------------------------------

    def ddp_efficiency_table(self):
        """Each round's 1-rank and 2-rank runs, back to back, and their ratio."""
        rounds = collections.defaultdict(dict)
        for r in self.ddp_efficiency:
            rounds[int(r["round"])][int(r["ranks"])] = r
        pairs = [(k, runs[1], runs[2]) for k, runs in sorted(rounds.items()) if 1 in runs and 2 in runs]
        if not pairs:
            return
        lines = ["| round | 1 rank, samples/s | 2 ranks, samples/s | efficiency (2 ranks / twice 1) |", "|---|---|---|---|"]
        ratios = []
        for k, one, two in pairs:
            ratios.append(float(two["samples_per_sec"]) / (2 * float(one["samples_per_sec"])))
            lines.append(f"| {k} | {float(one['samples_per_sec']):,.0f} | {float(two['samples_per_sec']):,.0f} | {ratios[-1]:.3f} |")
        middle = statistics.median(ratios)
        lines.append(f"| median | | | {middle:.3f} |")
        one = pairs[0][1]
        self.tables.append((f"ddp-train {one['model']}, two-rank efficiency (batch {one['batch_per_rank']} per rank, "
                            f"{one['steps']} steps a run)", "\n".join(lines)))

    def pipeline_panels(self):
        """(model, stages) of every pipelined sweep, the 1024x4 mlp's first."""
        return sorted({(r["model"], int(r["stages"])) for r in self.pipeline if int(r["stages"]) > 1},
                      key=lambda panel: (panel[0] != "mlp(1024,1024,1024,1024)", panel))

    def pipeline_plot(self):
        panels = self.pipeline_panels()
        if not panels:
            return
        fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False, sharey=True)
        for ax, (model, stages) in zip(axes[0], panels):
            rows = [r for r in self.pipeline if r["model"] == model and int(r["stages"]) == stages]
            micro = sorted({int(r["microbatches"]) for r in rows})
            dense = [m / 4 for m in range(4, 4 * max(micro) + 1)]
            ax.plot(dense, [(stages - 1) / (m + stages - 1) for m in dense], color="grey", label="theory (S-1)/(M+S-1)")
            for schedule, style, color in [("gpipe", "s--", "tab:blue"), ("1f1b", "o-", "tab:orange")]:
                points = sorted((int(r["microbatches"]), float(r["bubble_measured"]), float(r.get("bubble_stage_times") or "nan"))
                                for r in rows if r["schedule"] == schedule)
                ax.plot([m for m, _, _ in points], [b for _, b, _ in points], style, color=color, label=f"measured, {schedule}")
                if any(not math.isnan(t) for _, _, t in points):
                    ax.plot([m for m, _, _ in points], [t for _, _, t in points], ":", color=color,
                            label=f"{schedule} for the stages' measured times")
            ax.set_xscale("log", base=2)
            ax.set_xticks(micro)
            ax.set_xticklabels([str(m) for m in micro])
            ax.set_xlabel("micro-batches per batch (M)")
            ax.set_title(f"{model}, {stages} stages", fontsize=9)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
        axes[0][0].set_ylabel("bubble: idle share of a stage's step")
        cores = self.pipeline[0]["cores"]
        fig.suptitle(f"pipe-train bubble vs micro-batches (batch 256; {cores} cores: beyond 2 stages the stages share cores)")
        self.save(fig, "pipeline-bubble.png", self.pipeline)

    def pipeline_table(self):
        if not self.pipeline:
            return
        lines = ["| model | stages | micro-batches | schedule | samples/s | bubble measured | for the stages' times | bubble theory | peak stored micro-batches |",
                 "|---|---|---|---|---|---|---|---|---|"]
        order = {panel: k for k, panel in enumerate(self.pipeline_panels())}
        for r in sorted(self.pipeline, key=lambda r: (order.get((r["model"], int(r["stages"])), -1), r["schedule"], int(r["microbatches"]))):
            # Rows from before the column have none.
            stage_times = f"{float(r['bubble_stage_times']):.3f}" if r.get("bubble_stage_times") else ""
            lines.append(f"| {r['model']} | {r['stages']} | {r['microbatches']} | {r['schedule']} | {float(r['samples_per_sec']):,.0f} | "
                         f"{float(r['bubble_measured']):.3f} | {stage_times} | {float(r['bubble_theory']):.3f} | "
                         f"{r['peak_stored_microbatches']} |")
        self.tables.append(("pipe-train", "\n".join(lines)))

    # -- cost model ---------------------------------------------------------------

    def costmodel_report(self):
        if not self.machine:
            return
        model = costmodel.AllreduceModel(self.machine)
        m = self.machine
        params = [f"- intra-node (shared memory): alpha {m.intra.alpha * 1e6:.2f} µs, {1 / m.intra.beta / 1e9:.2f} GB/s"]
        if m.inter:
            params.append(f"- inter-node (simulated link), both directions busy: alpha {m.inter.alpha * 1e6:.2f} µs, "
                          f"{1 / m.inter.beta / 1e9:.3f} GB/s each way; one way: alpha {m.inter_oneway.alpha * 1e6:.2f} µs, "
                          f"{1 / m.inter_oneway.beta / 1e9:.3f} GB/s")
        for ranks, rate in sorted(m.window.items()):
            params.append(f"- shared-window transfer at {ranks} ranks: {1 / rate.per_byte(1 << 18) / 1e9:.1f} GB/s at 256 KiB, "
                          f"{1 / rate.per_byte(1 << 26) / 1e9:.1f} GB/s at 64 MiB")
        for load, link in sorted(m.crowded.items()):
            params.append(f"- a node's ring step with {load:g} ranks per core: alpha {link.alpha * 1e6:.2f} µs, {1 / link.beta / 1e9:.2f} GB/s")
        params.append(f"- reduction: {1 / m.gamma.per_byte(1 << 16) / 1e9:.1f} GB/s at 64 KiB, {1 / m.gamma.per_byte(1 << 26) / 1e9:.1f} GB/s at 64 MiB; "
                      f"copy {1 / m.copy.per_byte(1 << 16) / 1e9:.1f} and {1 / m.copy.per_byte(1 << 26) / 1e9:.1f} GB/s; {m.cores} cores per node")
        self.tables.append(("Cost model parameters (fitted from p2p.csv)", "\n".join(params)))

        # Prediction vs measurement for every measured (placement, ranks, algorithm, size).
        # Simulated nodes share this machine's cores: each of 2 nodes has half of them (a
        # rank alone on its node never stretches, so 4 nodes of 1 need no other figure).
        simulated = costmodel.AllreduceModel(m.with_cores(max(1, m.cores // 2)))
        compared = []
        for r in self.allreduce:
            p, nodes, n = int(r["ranks"]), int(r["nodes"]), int(r["bytes"])
            here = simulated if r["placement"] == "simulated-cluster" else model
            predicted = here.predict(r["algorithm"], n, p, math.ceil(p / nodes)) if (nodes == 1 or m.inter) else None
            if predicted:
                compared.append((r["placement"], p, nodes, r["algorithm"], n, predicted, float(r["time_us_max"]) * 1e-6))
        if compared:
            keys = sorted({(pl, p, nn) for pl, p, nn, _, _, _, _ in compared})
            columns = min(len(keys), 3)
            rows_of_axes = math.ceil(len(keys) / columns)
            fig, axes = plt.subplots(rows_of_axes, columns, figsize=(5.6 * columns, 4.4 * rows_of_axes), squeeze=False)
            for ax in axes.flat[len(keys):]:
                ax.set_visible(False)
            for ax, key in zip(axes.flat, keys):
                for algorithm in ["ring", "recursive-doubling", "hierarchical", "shared-memory"]:
                    pts = sorted((n, pr, me) for pl, p, nn, a, n, pr, me in compared if (pl, p, nn) == key and a == algorithm)
                    if not pts:
                        continue
                    color, marker = ALGORITHM_STYLE[algorithm]
                    ax.plot([n for n, _, _ in pts], [me * 1e6 for _, _, me in pts], marker=marker, color=color, linestyle="none",
                            markersize=4, label=f"{algorithm} measured")
                    ax.plot([n for n, _, _ in pts], [pr * 1e6 for _, pr, _ in pts], color=color, label=f"{algorithm} model")
                size_axis(ax)
                ax.set_yscale("log")
                ax.set_xlabel("message size")
                ax.set_ylabel("time per all-reduce (µs)")
                ax.set_title(f"{key[1]} ranks, {key[2]} node(s), {key[0]}")
                ax.grid(True, which="both", alpha=0.3)
                ax.legend(fontsize=7)
            fig.suptitle("Cost model (lines) against measurement (markers)")
            fig.tight_layout()
            self.save(fig, "costmodel-allreduce.png", self.allreduce)
            lines = ["| placement | ranks | nodes | algorithm | sizes ≥ 64 KiB within 30% | median model/measured (≥ 64 KiB) | worst (≥ 64 KiB) |",
                     "|---|---|---|---|---|---|---|"]
            groups = collections.defaultdict(list)
            for pl, p, nn, a, n, pr, me in compared:
                if n >= 1 << 16:
                    groups[(pl, p, nn, a)].append((n, pr / me))
            for (pl, p, nn, a), ratios in sorted(groups.items()):
                within = sum(1 for _, x in ratios if 0.7 <= x <= 1.3)
                xs = sorted(x for _, x in ratios)
                worst_n, worst = max(ratios, key=lambda t: abs(math.log(t[1])))
                lines.append(f"| {pl} | {p} | {nn} | {a} | {within}/{len(ratios)} | {xs[len(xs) // 2]:.2f} | {worst:.2f} at {size_label(worst_n)} |")
            self.tables.append(("Cost model against measured all-reduce", "\n".join(lines)))

        self.costmodel_ddp(model, simulated)

    def costmodel_ddp(self, model, simulated):
        """DDP step: prediction vs measurement at the measured rank counts, then the
        predicted weak-scaling efficiency from 8 to 4,096 ranks."""
        base = {}
        for r in self.ddp:
            if r["ranks"] == "1" and r["scaling"] == "weak":
                base[r["model"]] = r
        rows = [r for r in self.ddp if r["model"] in base and r["scaling"] == "weak" and int(r["ranks"]) > 1
                and r["bucket_mb"] in ("25", "25.0") and (r["placement"] == "one-node" or self.machine.inter)]
        if not rows or not self.machine:
            return
        # The gradient buckets each model's step all-reduces, as ddp-train planned them.
        buckets = {name: [int(b) for b in r.get("bucket_bytes", "").split()] for name, r in base.items()}
        if not all(buckets.values()):
            return
        lines = ["| model | placement | ranks | nodes | overlap | measured step ms | predicted step ms | model/measured |", "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            p, nodes = int(r["ranks"]), int(r["nodes"])
            compute = float(base[r["model"]]["step_seconds"])
            here = simulated if r["placement"] == "simulated-cluster" else model
            step, _, _ = costmodel.ddp_step(here, compute, buckets[r["model"]], p, math.ceil(p / nodes), overlap=r["overlap"] == "true")
            measured = float(r["step_seconds"])
            lines.append(f"| {r['model']} | {r['placement']} | {p} | {nodes} | {r['overlap']} | {measured * 1e3:.1f} | {step * 1e3:.1f} | {step / measured:.2f} |")
        self.tables.append(("Cost model against measured ddp-train steps (weak scaling, 25 MiB buckets)", "\n".join(lines)))

        if not self.machine.inter:
            return
        fig, ax = plt.subplots(figsize=(7.5, 4.6))
        scale = [8 << k for k in range(10)]  # 8 .. 4096
        lines = ["| model | ranks per node | " + " | ".join(str(p) for p in scale) + " |", "|---|---|" + "---|" * len(scale)]
        wide_model = costmodel.AllreduceModel(self.machine.with_cores(1 << 20))
        for model_name, style in [("lenet", "-"), ("mlp", "--")]:
            if model_name not in base or not buckets[model_name]:
                continue
            compute = float(base[model_name]["step_seconds"])
            for ranks_per_node, marker in [(1, "o"), (8, "s"), (32, "^")]:
                eff = []
                for p in scale:
                    step, comp, _ = costmodel.ddp_step(wide_model, compute, buckets[model_name], p, min(ranks_per_node, p))
                    eff.append(comp / step)
                ax.plot(scale, eff, style + marker, markersize=4, label=f"{model_name}, {ranks_per_node} rank(s)/node")
                lines.append(f"| {model_name} | {ranks_per_node} | " + " | ".join(f"{e:.2f}" for e in eff) + " |")
        efficiency_axes(ax, scale, "ranks",
                        "Predicted DDP weak scaling on this machine's links\n(one core per rank; nodes joined by the simulated link)")
        self.save(fig, "costmodel-ddp-scaling.png", self.ddp)
        self.tables.append(("Predicted DDP weak-scaling efficiency, 8 to 4,096 ranks (auto all-reduce, overlap on)", "\n".join(lines)))
        if "mlp" in base:
            self.compression_scaling(wide_model, float(base["mlp"]["step_seconds"]), buckets)

    # -- gradient compression ---------------------------------------------------

    def compression_summary(self):
        """Per model, link and compressor: the median over rounds of each measure, and
        the speed-up over the uncompressed runs of the same rounds."""
        groups = collections.defaultdict(list)
        for r in self.compression:
            groups[(r["model"], r["link"], r["compress"])].append(r)
        def median(rows, key):
            values = sorted(float(r[key]) for r in rows if r[key] != "")
            return values[len(values) // 2] if values else float("nan")
        summary = collections.OrderedDict()
        for (model, link, method), rows in groups.items():
            summary[(model, link, method)] = {k: median(rows, k) for k in
                                              ["samples_per_sec", "step_seconds", "bytes_sent_per_step", "payload_bytes_per_step",
                                               "compression_ratio", "compress_seconds", "decompress_seconds", "test_accuracy", "steps"]}
        return summary

    def compression_report(self):
        if not self.compression:
            return
        summary = self.compression_summary()
        methods = list(collections.OrderedDict.fromkeys(r["compress"] for r in self.compression))
        lines = ["| model | link | compress | samples/s | vs none | step ms | bytes sent/step | payload/step | ratio | (de)compress ms/step | test accuracy |",
                 "|---|---|---|---|---|---|---|---|---|---|---|"]
        for (model, link, method), s in summary.items():
            base = summary.get((model, link, "none"))
            speedup = s["samples_per_sec"] / base["samples_per_sec"] if base else float("nan")
            work = (s["compress_seconds"] + s["decompress_seconds"]) / max(1, s["steps"]) * 1e3
            lines.append(f"| {model} | {link} | {method} | {s['samples_per_sec']:.0f} | {speedup:.2f}x | {s['step_seconds'] * 1e3:.1f} | "
                         f"{size_label(int(s['bytes_sent_per_step']))} | {size_label(int(s['payload_bytes_per_step']))} | "
                         f"{s['compression_ratio']:.1f} | {work:.1f} | {s['test_accuracy'] * 100:.2f}% |")
        self.tables.append(("Gradient compression: 2 ranks, medians over rounds, each next to uncompressed", "\n".join(lines)))

        links = list(collections.OrderedDict.fromkeys(r["link"] for r in self.compression))
        models = list(collections.OrderedDict.fromkeys(r["model"] for r in self.compression))
        fig, axes = plt.subplots(1, len(models), figsize=(6.4 * len(models), 4.4), squeeze=False)
        width = 0.8 / max(1, len(methods))
        for ax, model in zip(axes[0], models):
            for k, method in enumerate(methods):
                values = [summary.get((model, link, method), {}).get("samples_per_sec", 0) for link in links]
                ax.bar([i + k * width for i in range(len(links))], values, width, label=method)
            ax.set_xticks([i + width * (len(methods) - 1) / 2 for i in range(len(links))])
            ax.set_xticklabels(links)
            ax.set_ylabel("samples/s (2 ranks)")
            ax.set_title(f"{model}")
            ax.grid(True, axis="y", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"ddp-train with gradient compression\n{self.metadata()}", fontsize=9)
        self.save(fig, "compression.png")

    # -- parameter server ---------------------------------------------------------

    def parameter_server_report(self):
        """Time to 85% test accuracy and samples/s of every consistency model, per
        straggler scenario, with ddp-train (no stragglers) as the reference."""
        if not self.parameter_server:
            return
        rows = self.parameter_server
        reference = next((r for r in rows if r["tool"] == "ddp-train"), None)
        lines = ["| stragglers | mode | samples/s | s to 85% | vs BSP | final accuracy | max staleness | worker iterations | blocked s/worker |",
                 "|---|---|---|---|---|---|---|---|---|"]
        scenarios = list(collections.OrderedDict.fromkeys(r["stragglers"] for r in rows if r["tool"] == "ps-train"))
        for r in rows:
            bsp = next((b for b in rows if b["tool"] == "ps-train" and b["stragglers"] == r["stragglers"] and b["mode"] == "bsp"), None)
            ratio = (float(bsp["seconds_to_85"]) / float(r["seconds_to_85"])
                     if bsp and bsp["seconds_to_85"] and r["seconds_to_85"] and r["tool"] == "ps-train" else float("nan"))
            name = "ddp-train (4 ranks)" if r["tool"] == "ddp-train" else r["mode"]
            reached = f"{float(r['seconds_to_85']):.1f}" if r["seconds_to_85"] else "not reached"
            relative = f"{ratio:.2f}x" if ratio == ratio else "—"
            lines.append(f"| {r['stragglers']} | {name} | {float(r['samples_per_sec']):.0f} | {reached} | "
                         f"{relative} | {float(r['test_accuracy']) * 100:.2f}% | {r['max_staleness']} | {r['worker_iterations']} | "
                         f"{float(r['blocked_seconds']):.1f} |")
        self.tables.append((f"Parameter server: LeNet, 1 server + 4 workers, time to 85% test accuracy (training seconds; "
                            f"{self.metadata(rows)})",
                            "\n".join(lines)))

        modes = list(collections.OrderedDict.fromkeys(r["mode"] for r in rows if r["tool"] == "ps-train"))
        fig, axes = plt.subplots(1, 2, figsize=(12.8, 4.4))
        width = 0.8 / max(1, len(modes))
        for ax, key, label in [(axes[0], "seconds_to_85", "training seconds to 85% test accuracy"),
                               (axes[1], "samples_per_sec", "samples/s")]:
            for k, mode in enumerate(modes):
                values = []
                for scenario in scenarios:
                    row = next((r for r in rows if r["tool"] == "ps-train" and r["mode"] == mode and r["stragglers"] == scenario), None)
                    values.append(float(row[key]) if row and row[key] else 0)
                ax.bar([i + k * width for i in range(len(scenarios))], values, width, label=mode)
            if reference and reference[key]:
                ax.axhline(float(reference[key]), color="black", linestyle="--", linewidth=1, label="ddp-train, no stragglers")
            ax.set_xticks([i + width * (len(modes) - 1) / 2 for i in range(len(scenarios))])
            ax.set_xticklabels([{"none": "no stragglers"}.get(s, ("--straggle " if "." in s.split(":")[0] else "--slow-worker ") + s)
                                for s in scenarios])
            ax.set_ylabel(label)
            ax.grid(True, axis="y", alpha=0.3)
            ax.legend(fontsize=7)
        axes[0].set_title("time to accuracy (lower is better; missing bar: not reached)")
        axes[1].set_title("throughput")
        fig.suptitle(f"ps-train LeNet, 1 server + 4 workers on one node\n{self.metadata(rows)}", fontsize=9)
        self.save(fig, "parameter-server.png")

    # -- hyper-parameter search -----------------------------------------------------

    def tune_report(self):
        """The grid's search seconds against ranks with the ideal line, and ASHA against
        the full grid: training samples spent and the best validation score."""
        if not self.tune:
            return
        scaling = [r for r in self.tune if r["sweep"] == "scaling"]
        schedulers = [r for r in self.tune if r["sweep"] == "schedulers"]
        fig, axes = plt.subplots(1, 2, figsize=(12.4, 4.5))
        time_ax, asha_ax = axes
        one_node = sorted((int(r["ranks"]), float(r["search_seconds"])) for r in scaling if r["placement"] == "one-node")
        base = next((t for p, t in one_node if p == 1), None)
        if one_node:
            time_ax.plot([p for p, _ in one_node], [t for _, t in one_node], "-o", label="one node")
        for placement in sorted({r["placement"] for r in scaling} - {"one-node"}):
            points = sorted((int(r["ranks"]), float(r["search_seconds"]), r["nodes"]) for r in scaling if r["placement"] == placement)
            time_ax.plot([p for p, _, _ in points], [t for _, t, _ in points], "s", markersize=8,
                         label=f"{placement} ({', '.join(sorted({n for _, _, n in points}))} nodes)")
        if base:
            ranks = sorted({int(r["ranks"]) for r in scaling})
            time_ax.plot(ranks, [base / p for p in ranks], ":", color="grey", label="ideal (1 rank / ranks)")
            time_ax.set_xticks(ranks)
        cores = scaling[0]["cores"] if scaling else "?"
        time_ax.set_xlabel(f"ranks (one trial each; {cores} cores per node)")
        time_ax.set_ylabel("search seconds")
        time_ax.set_title(f"grid search wall time ({scaling[0]['trials'] if scaling else '?'} trials, "
                          f"{scaling[0].get('model', '') if scaling else ''})")
        time_ax.grid(True, alpha=0.3)
        time_ax.legend(fontsize=8)
        if schedulers:
            # The scheduler column reads "fifo (every trial to its end)" or "asha (grace ...)".
            is_grid = lambda r: r["scheduler"].startswith("fifo")
            grid_samples = next((float(r["train_samples"]) for r in schedulers if is_grid(r)), None)
            names = ["full grid" if is_grid(r) else r["scheduler"].split(" ")[0].upper() for r in schedulers]
            samples = [float(r["train_samples"]) / 1e6 for r in schedulers]
            bars = asha_ax.bar(names, samples, color=["tab:blue" if is_grid(r) else "tab:orange" for r in schedulers])
            for bar, r in zip(bars, schedulers):
                share = f", {float(r['train_samples']) / grid_samples:.0%} of the grid" if grid_samples else ""
                asha_ax.annotate(f"best {float(r['best_score']) * 100:.2f}%{share}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                 ha="center", va="bottom", fontsize=8)
            asha_ax.set_ylabel("training samples (millions)")
            asha_ax.set_title(f"ASHA against the full grid ({schedulers[0]['trials']} trials, {schedulers[0].get('model', '')})")
            asha_ax.grid(True, axis="y", alpha=0.3)
        else:
            asha_ax.set_visible(False)
        fig.suptitle(f"tune, one rank per trial\n{self.metadata(self.tune)}", fontsize=9)
        fig.subplots_adjust(top=0.82)
        self.save(fig, "tune.png")
        lines = ["| model | sweep | placement | ranks | nodes | scheduler | trials (stopped) | training samples | search s | groups busy | best | best score | default | grid's score of the best |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        percent = lambda v: f"{float(v) * 100:.2f}%" if v not in ("", None) else "—"
        for r in self.tune:
            lines.append(f"| {r.get('model', '')} | {r['sweep']} | {r['placement']} | {r['ranks']} | {r['nodes']} | {r['scheduler']} | {r['trials']} ({r['trials_stopped']}) | "
                         f"{int(float(r['train_samples'])):,} | {float(r['search_seconds']):.1f} | {float(r['busy_fraction']) * 100:.0f}% | "
                         f"{r['best_parameters']} | {percent(r['best_score'])} | {percent(r['default_score'])} | {percent(r.get('grid_score_of_best'))} |")
        self.tables.append((f"tune: grid search wall time and ASHA against the full grid ({self.metadata(self.tune)})", "\n".join(lines)))

    # -- federated -------------------------------------------------------------------

    def federated_report(self):
        """Test accuracy against round, one line per configuration and a panel per
        partition, and rounds to the target against FedSGD's."""
        rows = self.federated
        if not rows:
            return
        partitions = list(collections.OrderedDict.fromkeys(r["partition"] for r in rows))
        fig, axes = plt.subplots(1, len(partitions), figsize=(6.4 * len(partitions), 4.6), squeeze=False)
        for ax, partition in zip(axes[0], partitions):
            for r in (r for r in rows if r["partition"] == partition):
                points = curve_points(r)
                ax.plot([x for x, _ in points], [y * 100 for _, y in points], label=config_label(r))
            target = float(rows[0]["target_accuracy"]) * 100
            ax.axhline(target, color="grey", linestyle=":", label=f"target {target:.0f}%")
            ax.set_xscale("log")
            ax.set_xlabel("communication round")
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(partition)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"fed-train LeNet, 100 clients, C = 0.1\n{self.metadata(rows)}", fontsize=9)
        self.save(fig, "federated.png")
        lines = ["| partition | configuration | rounds to target | vs FedSGD | best accuracy | final accuracy | client samples | MB up |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            sgd = next((b for b in rows if b["partition"] == r["partition"] and b["algorithm"] == "fedsgd"), None)
            reached = r["rounds_to_target"] or f"not in {r['rounds']}"
            ratio = (f"{float(sgd['rounds_to_target']) / float(r['rounds_to_target']):.1f}x"
                     if sgd and sgd["rounds_to_target"] and r["rounds_to_target"] else "—")
            lines.append(f"| {r['partition']} | {config_label(r)} | {reached} | {ratio} | {float(r['best_accuracy']) * 100:.2f}% | "
                         f"{float(r['final_accuracy']) * 100:.2f}% | {int(float(r['client_samples'])):,} | {float(r['bytes_up']) / 1e6:.0f} |")
        self.tables.append((f"fed-train: rounds to {float(rows[0]['target_accuracy']) * 100:.0f}% test accuracy ({self.metadata(rows)})",
                            "\n".join(lines)))

    def niid_bench_plot(self):
        """NIID-Bench's settings (10 clients, E = 10, B = 64, 50 rounds): test accuracy
        against round, one line per configuration, NIID-Bench's own figure as a dotted
        line of the same colour. Its rows are written from fed-train's runs by hand:
        each configuration is 30 million training samples, too long for make bench."""
        rows = self.niid_bench
        if not rows:
            return
        fig, ax = plt.subplots(figsize=(7.2, 4.6))
        lines = ["| configuration | Chorus | rounds | NIID-Bench (50 rounds) | difference | binary |", "|---|---|---|---|---|---|"]
        for r in rows:
            points = curve_points(r)
            final, paper = float(r["final_accuracy"]) * 100, float(r["paper_accuracy"]) * 100
            label = f"{r['configuration']}: {final:.2f}% at round {r['rounds']} (NIID-Bench {paper:.1f}%)"
            line, = ax.plot([x for x, _ in points], [y * 100 for _, y in points], marker="o", markersize=3, label=label)
            ax.axhline(paper, color=line.get_color(), linestyle=":", linewidth=1)
            lines.append(f"| {r['configuration']} | {final:.2f}% | {r['rounds']} | {paper:.1f}% | {final - paper:+.2f} | {r['git_commit']} |")
        ax.set_xlabel("communication round")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.suptitle(f"fed-train LeNet-5 in NIID-Bench's settings (docs/federated.md)\n{self.metadata(rows)}", fontsize=9)
        self.save(fig, "niid-bench.png")
        self.tables.append((f"fed-train against NIID-Bench ({self.metadata(rows)})", "\n".join(lines)))

    def partition_plot(self):
        """Each scheme's clients as stacked bars of samples per label."""
        if not self.partitions:
            return
        fig, axes = plt.subplots(1, len(self.partitions), figsize=(4.2 * len(self.partitions), 3.8), squeeze=False)
        for ax, (name, (summary, clients)) in zip(axes[0], self.partitions.items()):
            labels = [k for k in clients[0] if k.startswith("label_")]
            bottom = [0] * len(clients)
            for k, label in enumerate(labels):
                values = [int(c[label]) for c in clients]
                ax.bar(range(len(clients)), values, bottom=bottom, color=plt.cm.tab10(k % 10), label=label[6:])
                bottom = [b + v for b, v in zip(bottom, values)]
            ax.set_title(name.replace("-", ":", 1) if name != "iid" else name, fontsize=9)
            ax.set_xlabel("client")
            ax.set_ylabel("samples")
        axes[0][-1].legend(title="label", fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
        fig.suptitle("fed-train --describe-partition: samples per label of 10 clients", fontsize=9)
        self.save(fig, "partitions.png")

    def compression_scaling(self, wide_model, compute, buckets):
        """The cost model's weak scaling of the MLP with each learned compressor."""
        compressors = costmodel.Compressor.learn(self.compression, "mlp")
        if not compressors or "mlp" not in buckets:
            return
        scale = [8 << k for k in range(10)]
        fig, ax = plt.subplots(figsize=(7.5, 4.6))
        lines = ["| compress | " + " | ".join(str(p) for p in scale) + " |", "|---|" + "---|" * len(scale)]
        for name, compressor in [("none", None)] + sorted(compressors.items()):
            eff = []
            for p in scale:
                predicted = costmodel.ddp_step_compressed(wide_model, compute, buckets["mlp"], p, 1, compressor)
                eff.append(predicted[1] / predicted[0] if predicted else float("nan"))
            ax.plot(scale, eff, marker="o", markersize=4, label=name)
            lines.append(f"| {name} | " + " | ".join(f"{e:.2f}" for e in eff) + " |")
        efficiency_axes(ax, scale, "ranks (one per node)",
                        "Predicted MLP weak scaling with gradient compression\n(the compressors' bytes and compute as measured)")
        self.save(fig, "costmodel-compression-scaling.png", self.compression)
        self.tables.append(("Predicted MLP weak-scaling efficiency with each compressor, 1 rank per node", "\n".join(lines)))

    # -- output -------------------------------------------------------------------

    def markdown(self):
        parts = [f"Latest run: {self.metadata()}.\n"]
        for title, body in self.tables:
            parts.append(f"#### {title}\n\n{body}\n")
        return "\n".join(parts)


def config_label(r):
    if r["algorithm"] == "fedsgd":
        return "FedSGD (E=1, B=all)"
    return f"{'FedAvg' if r['algorithm'] == 'fedavg' else r['algorithm']} E={r['local_epochs']} B={r['local_batch']}"


def efficiency_axes(ax, scale, xlabel, title):
    """A predicted-efficiency plot's axes: ranks on a log2 axis, efficiency 0 to 1."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(scale)
    ax.set_xticklabels([str(p) for p in scale])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("predicted efficiency (compute / step)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def update_doc(path, markdown):
    with open(path) as f:
        text = f.read()
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    if begin not in text or end not in text:
        raise SystemExit(f"{path} has no {begin} ... {end} section to fill")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        f.write(head + begin + "\n" + markdown + "\n" + end + tail)
    os.replace(temporary, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="Benchmarks/results", help="folder with the CSVs of bench.py")
    parser.add_argument("--out", default="docs/benchmarks", help="folder for the PNGs and summary.md")
    parser.add_argument("--doc", help="Markdown file whose results section is replaced by this run's tables")
    args = parser.parse_args()
    report = Report(args.results, args.out)
    if not (report.allreduce or report.ddp or report.pipeline or report.compression or report.parameter_server or report.tune
            or report.federated or report.niid_bench or report.partitions):
        raise SystemExit(f"no benchmark CSVs in {args.results}: run make bench-quick (or Benchmarks/bench.py) first")
    report.allreduce_plots()
    report.allreduce_table()
    report.ddp_scaling_plot()
    report.ddp_split_plot()
    report.ddp_bucket_plot()
    report.ddp_table()
    report.ddp_efficiency_table()
    report.pipeline_plot()
    report.pipeline_table()
    report.costmodel_report()
    report.compression_report()
    report.parameter_server_report()
    report.tune_report()
    report.federated_report()
    report.niid_bench_plot()
    report.partition_plot()
    markdown = report.markdown()
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(markdown)
    if args.doc:
        update_doc(args.doc, markdown)
    for path in report.written:
        print(f"wrote {path}")
    print(f"wrote {os.path.join(args.out, 'summary.md')}" + (f" and the results section of {args.doc}" if args.doc else ""))


if __name__ == "__main__":
    main()
