#!/usr/bin/env python3
"""Markdown table of bus bandwidth per algorithm from allreduce-bench CSVs.

    Benchmarks/scripts/allreduce_table.py Benchmarks/results/allreduce-2-ranks.csv [...]

One table per file: a row per size, busbw (GB/s) per algorithm, and auto's speed-up
over MPI_Allreduce (time ratio, same run).
"""
import csv
import sys

SIZES = [4, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20]


def label(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"


def table(path):
    rows = list(csv.DictReader(open(path)))
    algorithms = list(dict.fromkeys(r["algorithm"] for r in rows))
    by = {(int(r["bytes"]), r["algorithm"]): r for r in rows}
    ranks, nodes = rows[0]["ranks"], rows[0]["nodes"]
    print(f"{ranks} ranks, {nodes} node(s); busbw in GB/s (memcpy: one core's copy bandwidth)\n")
    print("| size | " + " | ".join(algorithms) + " | auto vs mpi |")
    print("|" + " ---: |" * (len(algorithms) + 2))
    for size in SIZES:
        if (size, "mpi") not in by:
            continue
        cells = [f"{float(by[(size, a)]['busbw_GBps']):.2f}" for a in algorithms]
        auto, mpi = by.get((size, "auto")), by[(size, "mpi")]
        ratio = f"{float(mpi['time_us_max']) / float(auto['time_us_max']):.2f}x" if auto else ""
        print(f"| {label(size)} | " + " | ".join(cells) + f" | {ratio} |")
    print()


for path in sys.argv[1:]:
    table(path)
