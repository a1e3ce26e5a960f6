# Chorus: build, test and run. Every target installs what it needs first, so a
# fresh Debian 12 machine with only the Swift toolchain can run `make demo` and
# `make test`.

SHELL := /bin/bash
SWIFT ?= swift
BIN := .build/release
RANKS ?= 4
EPOCHS ?= 2

# Debian packages: MPI (headers, library, mpirun), OpenBLAS, zlib for gzip'd IDX
# files, pkg-config for SwiftPM's system-library targets, and the dataset itself.
# python3 runs the benchmark driver and the cost model's tests.
APT_PACKAGES := libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev pkg-config dataset-fashion-mnist python3

# Debian's python3 (its python3-matplotlib is not on a pyenv or venv python's path).
PYTHON ?= /usr/bin/python3

# OpenMPI refuses to run as root without both of these; CI and containers run as root.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
# Tests start up to 6 ranks on a 2-core machine: allow more ranks than cores, and
# make waiting ranks yield the core instead of spinning on it.
export OMPI_MCA_rmaps_base_oversubscribe := 1
export OMPI_MCA_mpi_yield_when_idle := 1

.PHONY: all deps plot-deps build example test unit-test mpi-test test-slurm demo bench bench-quick publish-bench plots bench-allreduce cluster-up cluster-down clean

all: build

# apt-get install whichever of the packages $(1) are missing (sudo unless root).
apt_install = missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  echo "installing:" $$missing; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

deps:
	@$(call apt_install,$(APT_PACKAGES))

# matplotlib draws the benchmark plots (make plots).
PLOT_PACKAGES := python3 python3-matplotlib

plot-deps:
	@$(call apt_install,$(PLOT_PACKAGES))

build: deps
	$(SWIFT) build -c release

# In-process unit tests (XCTest and the cost model's), then the multi-process tests
# under mpirun (which also run Examples/, a package using Chorus as a library).
test: build example
	$(SWIFT) test --disable-swift-testing
	$(PYTHON) -m unittest discover -s Benchmarks/scripts -p 'test_*.py'
	Tests/mpi/run.sh

# Examples/: a separate package that depends on Chorus by path.
example: deps
	$(SWIFT) build --package-path Examples -c release

unit-test: deps
	$(SWIFT) test --disable-swift-testing

mpi-test: build example
	Tests/mpi/run.sh

# The jobs/ scripts under a real one-node SLURM that the script installs (slurm-wlm,
# munge), starts, and stops again. Needs root.
test-slurm: build plot-deps
	PYTHON=$(PYTHON) Tests/slurm/run.sh

# The main job: four ranks train LeNet-5 on Fashion-MNIST with Chorus's ring all-reduce.
demo: build
	mpirun -n $(RANKS) $(BIN)/ddp-train --model lenet --epochs $(EPOCHS)

# The scaling benchmark suite (Benchmarks/bench.py): CSVs with machine metadata and
# their plots in $(RESULTS) (untracked; plots under $(RESULTS)/plots). bench-quick takes
# under 5 minutes on 2 cores; bench is the full sweep. As root, both also run on a
# simulated 2-node cluster. Only `make publish-bench` changes what is committed: it
# copies $(RESULTS)'s CSVs over Benchmarks/results and redraws docs/benchmarks from them
# (a suite the run skipped keeps its committed CSV).
RESULTS ?= results
bench: build plot-deps
	$(PYTHON) Benchmarks/bench.py --profile full --out $(RESULTS)
	$(PYTHON) Benchmarks/scripts/plots.py --results $(RESULTS) --out $(RESULTS)/plots

bench-quick: build plot-deps
	$(PYTHON) Benchmarks/bench.py --profile quick --out $(RESULTS)
	$(PYTHON) Benchmarks/scripts/plots.py --results $(RESULTS) --out $(RESULTS)/plots

publish-bench: plot-deps
	@ls $(RESULTS)/*.csv >/dev/null 2>&1 || { echo "publish-bench: no CSVs in $(RESULTS); run make bench first" >&2; exit 1; }
	cp $(RESULTS)/*.csv Benchmarks/results/
	if [ -f $(RESULTS)/allreduce.table ]; then cp $(RESULTS)/allreduce.table Benchmarks/results/; fi
	$(MAKE) --no-print-directory plots

plots: plot-deps
	$(PYTHON) Benchmarks/scripts/plots.py --results Benchmarks/results --out docs/benchmarks --doc docs/benchmarks.md

# A quick look at the all-reduce algorithms against MPI_Allreduce: 2 and 4 ranks, and
# 4 ranks counted as 2 nodes of 2, 4 B to 64 MiB, one sweep each. Tables on the console
# and in Benchmarks/results/allreduce-*-ranks*.{txt,csv} (not committed; the tables in
# docs/collectives.md come from make bench, which repeats each sweep).
BENCH_RANKS ?= 2 4
ALLREDUCE_ALGORITHMS = shared-memory,ring,hierarchical,recursive-doubling,mpi,auto
bench-allreduce: build
	mkdir -p Benchmarks/results
	for p in $(BENCH_RANKS); do \
	  mpirun -n $$p $(BIN)/allreduce-bench --min-bytes 4 --max-bytes 64M --algorithms $(ALLREDUCE_ALGORITHMS) \
	    --csv Benchmarks/results/allreduce-$$p-ranks.csv | tee Benchmarks/results/allreduce-$$p-ranks.txt; \
	  [ $${PIPESTATUS[0]} -eq 0 ] || exit 1; \
	done
	mpirun -n 4 $(BIN)/allreduce-bench --min-bytes 4 --max-bytes 64M --ranks-per-node 2 \
	  --algorithms hierarchical,ring,recursive-doubling,mpi,auto \
	  --csv Benchmarks/results/allreduce-4-ranks-2-per-node.csv | tee Benchmarks/results/allreduce-4-ranks-2-per-node.txt; \
	  [ $${PIPESTATUS[0]} -eq 0 ] || exit 1

# A simulated cluster on this machine (network namespaces, needs root), for
# multi-node runs: make cluster-up NODES=2 RANKS_PER_NODE=2 [BANDWIDTH=1gbit], then
# Benchmarks/cluster/cluster-mpirun -n 4 <program>, then make cluster-down.
NODES ?= 2
RANKS_PER_NODE ?= 2
cluster-up:
	NODES=$(NODES) RANKS_PER_NODE=$(RANKS_PER_NODE) BANDWIDTH=$(BANDWIDTH) LATENCY=$(LATENCY) Benchmarks/cluster/cluster-up.sh

cluster-down:
	Benchmarks/cluster/cluster-down.sh

clean:
	rm -rf .build
