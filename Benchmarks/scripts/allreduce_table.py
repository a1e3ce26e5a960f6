#!/usr/bin/env python3
"""Markdown tables of bus bandwidth per algorithm from allreduce-bench CSVs.

    Benchmarks/scripts/allreduce_table.py Benchmarks/results/allreduce.csv [...]

One table per placement, rank and node count (the bench suite's allreduce.csv holds
several; a CSV written by allreduce-bench itself holds one): a row per size, busbw
(GB/s) per algorithm, and auto's speed-up over MPI_Allreduce (time ratio, same run).
"""
import csv
import sys

SIZES = [4, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20]


def label(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"


def table(rows):
    algorithms = list(dict.fromkeys(r["algorithm"] for r in rows))
    by = {(int(r["bytes"]), r["algorithm"]): r for r in rows}
    first = rows[0]
    where = f" ({first['placement']})" if first.get("placement") else ""
    print(f"{first['ranks']} ranks, {first['nodes']} node(s){where}; busbw in GB/s (memcpy: one core's copy bandwidth)\n")
    print("| size | " + " | ".join(algorithms) + " | auto vs mpi |")
    print("|" + " ---: |" * (len(algorithms) + 2))
    for size in SIZES:
        if (size, "mpi") not in by:
            continue
        cells = [f"{float(by[(size, a)]['busbw_GBps']):.2f}" if (size, a) in by else "" for a in algorithms]
        auto, mpi = by.get((size, "auto")), by[(size, "mpi")]
        ratio = f"{float(mpi['time_us_max']) / float(auto['time_us_max']):.2f}x" if auto else ""
        print(f"| {label(size)} | " + " | ".join(cells) + f" | {ratio} |")
    print()


for path in sys.argv[1:]:
    groups = {}
    for row in csv.DictReader(open(path)):
        groups.setdefault((row.get("placement", ""), row["ranks"], row["nodes"]), []).append(row)
    for rows in groups.values():
        table(rows)
