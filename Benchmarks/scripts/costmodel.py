#!/usr/bin/env python3
"""An alpha-beta-gamma cost model of Chorus's all-reduce algorithms and DDP step.

The parameters are fitted from p2p-bench (Benchmarks/results/p2p.csv), never from
the all-reduce measurements they are checked against:

    alpha, beta   time of an n-byte message = alpha + n * beta, per link, fitted to
                  the two-rank exchange rows (both directions busy, as in a
                  collective's step): shared memory (same node) and network (different
                  nodes; the simulated cluster's shaped veth links). Inside the
                  measured range a message's time is read off the measured points.
                  The network also has a one-way fit (ping-pong rows): two ranks
                  exchanging both ways over one connection get less per direction than
                  one stream alone;
    crowded       a ring step (`shift`: every rank sends at once) measured with more
                  ranks than cores, where ranks take turns on the cores;
    window        the shared-window broadcast of n bytes at 2 and 4 ranks on a node
                  (one core copies a piece in, another copies it out): the
                  cross-core transfer of the shared-memory collectives;
    gamma         seconds per byte of `accumulator += addend` (the collectives' kernel),
    copy          and of memcpy, both as measured at each size: cache or memory
                  decides them, not a constant.

The algorithms (p ranks on N nodes of r ranks, n bytes; Thakur, Rabenseifner and
Gropp, "Optimization of collective communication operations in MPICH", 2005):

    ring                2(p-1) steps of a chunk of n/p bytes plus (p-1) reductions
                        of a chunk: ~ 2(p-1) * alpha + 2(p-1)/p * n * beta + (p-1)/p * n * gamma.
                        A step's 256 KiB segments leave back to back, so a step costs
                        one transfer of the whole chunk, at the per-byte rate of a
                        measured message whose buffers take up as much memory as the
                        ring's (buffer and two chunks of scratch per rank): a 1 MiB
                        chunk of a 4 MiB ring moves from memory, not from cache. Across
                        nodes every step waits for the network; with r > 1 the ranks at
                        a node's edge only send or only receive over it (with r = 1
                        and p > 2 a rank sends to one node and receives from another),
                        and the steps stream without a pause, so a shaped link runs at
                        its sustained rate (the one-way line); only 2 nodes of 1 rank
                        exchange both ways over one connection. Chunks below TCP's eager limit overlap
                        one step's latency with the last one's transfer; larger ones
                        pay a rendezvous each step
    recursive doubling  ceil(log2 p) exchanges of all n bytes, n*gamma each (at the
                        rate of its memory: buffer and two message buffers), plus the
                        copies into and out of the message buffer; a p that is not a
                        power of two adds a fold in and out (2 more messages). Partners
                        2^k apart: the first log2(r) exchanges stay on a node, the
                        others cross it with all r ranks of a node sharing its link
    shared memory       in 256 KiB pieces: each rank copies a piece into the window,
                        reduces its 1/r of it over the r copies, copies the result
                        out; 2 barriers per piece. Where the window was measured at r
                        ranks: one window transfer of n, a second crossing of
                        (r-1)/r * n at the in-cache (one piece) window rate, the
                        additions and a barrier per piece. Elsewhere: the window stays
                        in cache, so a copy pays for memory only on the user buffer's
                        side, half a memcpy
    hierarchical        the shared-memory reduce on each node (priced as the
                        all-reduce: the leader still copies everything out),
                        all-reduce among the N leaders over the network (recursive
                        doubling below 128 KiB, else ring), node broadcast (the
                        measured window transfer, or one copy of n on the critical path)

Ranks share a node's cores: when r ranks run on fewer cores, every CPU-driven cost on
that node (copies, reductions, the software overhead of a message) stretches by
r / cores, and a node's message steps use the crowded measurement where there is one.
The DDP step is compute (measured at one rank, stretched the same way) plus the
all-reduce of each gradient bucket that backward could not hide: with overlap,
buckets are reduced while the remaining backward runs (backward taken as 2/3 of the
step's compute), so only the part longer than that, and at least the last bucket,
shows.
"""

import argparse
import csv
import math
import os
import sys

SMALL_MESSAGE_BYTES = 128 << 10    # AllreducePolicy: recursive doubling below this
BARRIER_SECONDS = 1e-6             # one flag barrier in the shared window
BACKWARD_SHARE = 2.0 / 3.0         # backward's share of a training step's compute
SMALL_LINK_BYTES = 1 << 10         # ping-pong sizes that measure alpha
LARGE_LINK_BYTES = 1 << 20         # ping-pong sizes that measure beta
PIECE_BYTES = 256 << 10            # SharedMemoryAllreduce.defaultPieceBytes
TCP_EAGER_BYTES = 64 << 10         # Open MPI's btl_tcp_eager_limit (header included)


def fit_link(points):
    """Hockney's fit of t = alpha + n * beta to message times: beta is the slope
    between the two largest sizes, where the link is saturated: a shaped link's
    burst allowance and the protocol switches of small messages drop out as a
    constant; alpha the median of the small messages' (at most 1 KiB) time less their
    bytes' share. A least-squares line over all sizes would let one regime bend the
    other."""
    small = [(n, t) for n, t in points if n <= SMALL_LINK_BYTES]
    large = sorted((n, t) for n, t in points if n >= LARGE_LINK_BYTES)
    if not small or len(large) < 2:
        raise ValueError(f"need message sizes up to {SMALL_LINK_BYTES} B and two from {LARGE_LINK_BYTES} B to fit alpha and beta")
    (n0, t0), (n1, t1) = large[-2], large[-1]
    beta = max(t1 - t0, 0.0) / (n1 - n0)
    latencies = sorted(max(t - n * beta, 0.0) for n, t in small)
    alpha = latencies[len(latencies) // 2]
    return alpha, beta


class Rate:
    """Seconds per byte of a local operation as measured at each size, interpolated
    between sizes (log scale) and held beyond them: a reduction of 1 MiB runs from
    cache, one of 64 MiB from memory, at a third of the speed."""

    def __init__(self, points):
        if not points:
            raise ValueError("no measurements of the local reduction/copy rate")
        self.points = sorted((n, t / n) for n, t in points if n > 0)

    def per_byte(self, n):
        points = self.points
        if n <= points[0][0]:
            return points[0][1]
        for (n0, r0), (n1, r1) in zip(points, points[1:]):
            if n <= n1:
                w = (math.log(n) - math.log(n0)) / (math.log(n1) - math.log(n0))
                return r0 + w * (r1 - r0)
        return points[-1][1]

    def seconds(self, n):
        return n * self.per_byte(n)


class Link:
    """One kind of point-to-point path: alpha seconds per message, beta per byte.

    With `measured` (size, seconds) points the message time inside the measured range
    is read off them (log-log interpolation) instead of the line: a real link is not
    one line. Shared memory switches protocol at 4 KiB; a token-bucket-shaped link
    sends up to its burst (256 KiB here) at line rate, so the ring's 256 KiB segments
    move at twice the rate of a 64 MiB message. Beyond the largest measured size the
    line continues from the last point with slope beta."""

    def __init__(self, alpha, beta, measured=()):
        self.alpha, self.beta = alpha, beta
        self.measured = sorted((n, t) for n, t in measured if n > 0 and t > 0)

    @staticmethod
    def fitted(points):
        return Link(*fit_link(points), measured=points)

    def message(self, n):
        points = self.measured
        if not points or n <= 0:
            return self.alpha + n * self.beta
        if n <= points[0][0]:
            return points[0][1]
        for (n0, t0), (n1, t1) in zip(points, points[1:]):
            if n <= n1:
                w = (math.log(n) - math.log(n0)) / (math.log(n1) - math.log(n0))
                return math.exp(math.log(t0) + w * (math.log(t1) - math.log(t0)))
        n_last, t_last = points[-1]
        return t_last + (n - n_last) * self.beta

    def __repr__(self):
        return f"Link(alpha={self.alpha * 1e6:.2f} us, {1 / self.beta / 1e9 if self.beta else float('inf'):.2f} GB/s)"


class Machine:
    """Fitted parameters: the intra-node link, the inter-node link (None when never
    measured) as seen by two ranks exchanging over it both ways at once (`inter`) and
    by one stream in one direction (`inter_oneway`), the reduction (gamma) and copy
    rates, and the cores of one node.

    The two network figures differ: on the simulated 0.5 GB/s links a pair exchanging
    over one connection got 0.24–0.31 GB/s each way, one stream 0.48 GB/s. A rank that
    sends to one node and receives from another (a ring of 4 nodes of 1) moved about
    0.40 GB/s each way, so it is the shared connection, not the rank's two directions,
    that costs; such rings are priced at the one-way rate."""

    def __init__(self, intra, inter, gamma, copy, cores, inter_oneway=None, crowded=None, window=None, window_cores=None):
        self.intra, self.inter, self.gamma, self.copy, self.cores = intra, inter, gamma, copy, cores
        # {ranks on the node: Rate}: the shared-window broadcast measured with that
        # many ranks on a node of `window_cores` cores (only valid for such nodes).
        self.window = window or {}
        self.window_cores = window_cores
        self.inter_oneway = inter_oneway or inter
        # {ranks per core: Link}: a node's ring step (`shift`, every rank sending at
        # once) measured with more ranks than cores. Taking turns on a core costs more
        # than the turns themselves (a rank waits for a peer that is not running), so
        # where this was measured it replaces the stretched two-rank exchange.
        self.crowded = crowded or {}

    @staticmethod
    def from_p2p(rows, cores=None):
        """Fits from p2p-bench rows. Links and local rates come from its two-rank
        runs (a core per rank); runs with more ranks than cores add `crowded` links."""
        cores = cores or int(rows[0].get("cores") or 1)
        pairs = [r for r in rows if int(r.get("ranks") or 2) == 2]

        def measured(kind, same_node, among=pairs):
            return [(float(r["bytes"]), float(r["time_us"]) * 1e-6) for r in among
                    if r["measurement"] == kind and (same_node is None or (r["same_node"] == "true") == same_node)]
        # Collective steps send and receive at once: fit the links to the exchange
        # rows (both directions busy), falling back to ping-pong.
        kind = "exchange" if measured("exchange", True) else "pingpong"
        intra = measured(kind, True)
        if not intra:
            raise ValueError("p2p results have no two-rank same-node exchange or ping-pong rows")
        inter = measured(kind, False)
        oneway = measured("pingpong", False)
        # Local rates: from the one-node runs (the rows repeat per placement).
        local = [r for r in pairs if r.get("placement", "one-node") == "one-node"] or pairs
        gamma = Rate(measured("reduce", None, local))
        copy = Rate(measured("memcpy", None, local))
        crowded, window = {}, {}
        for ranks in sorted({int(r.get("ranks") or 2) for r in rows}):
            these = [r for r in rows if int(r.get("ranks") or 2) == ranks]
            shifts = measured("shift", True, these)
            if ranks > cores and shifts:
                crowded[ranks / cores] = Link.fitted(shifts)
            if measured("window", True, these):
                window[ranks] = Rate(measured("window", True, these))
        return Machine(Link.fitted(intra), Link.fitted(inter) if inter else None, gamma, copy, cores,
                       inter_oneway=Link.fitted(oneway) if oneway else None, crowded=crowded,
                       window=window, window_cores=cores)

    def with_cores(self, cores):
        """The same links and rates on nodes of `cores` cores."""
        return Machine(self.intra, self.inter, self.gamma, self.copy, cores, inter_oneway=self.inter_oneway,
                       crowded=self.crowded, window=self.window, window_cores=self.window_cores)

    def measured_window(self, ranks):
        """The window broadcast measured at `ranks` ranks on nodes like these, if any."""
        return self.window.get(ranks) if self.window_cores == self.cores else None

    def stretch(self, ranks_per_node):
        """How much slower CPU-driven work runs when ranks_per_node ranks share the cores."""
        return max(1.0, ranks_per_node / self.cores)


class AllreduceModel:
    """Predicted seconds of one all-reduce of n bytes at p ranks on nodes of r ranks.

    `s` below is the stretch of CPU-driven work when r ranks share fewer cores: it
    applies to copies, additions, message overheads (alpha) and shared-memory
    transfers, not to time on the wire of a network link."""

    def __init__(self, machine):
        self.m = machine

    def _nodes(self, p, r):
        nodes = math.ceil(p / r)
        if nodes > 1 and self.m.inter is None:
            raise ValueError("no inter-node exchange measured: run the p2p suite on the simulated cluster")
        return nodes

    def _step(self, n, s, crossing, flows=1, both_ways=True, footprint=None):
        """One exchange of n bytes: on the node (shared memory, all CPU) or across
        nodes, where `flows` transfers share the node's link and `both_ways` says
        whether a rank both sends and receives over the network in this step.

        `footprint` is the memory each rank's collective works in (its buffer and
        scratch). The measured exchange of n bytes touches only its two n-byte
        buffers, which may fit a cache the collective's memory does not: on the node,
        a step costs at least the per-byte rate of a measured message whose two
        buffers take up the footprint."""
        if crossing:
            link = self.m.inter if both_ways else self.m.inter_oneway
            # Flows sharing a link each get 1/flows of it: as one message `flows` times larger.
            return link.message(flows * n) + link.alpha * (s - 1)
        crowded = self.m.crowded.get(s)
        link, stretch = (crowded, 1.0) if crowded else (self.m.intra, s)
        t = link.message(n)
        like = (footprint or 2 * n) / 2
        if n > 0 and like > n:
            t = max(t, link.message(like) * n / like)
        return t * stretch

    def ring(self, n, p, r):
        if p == 1:
            return 0.0
        nodes, s = self._nodes(p, r), self.m.stretch(r)
        chunk = n / p
        # A step's segments leave back to back, so the link sees one transfer of the
        # whole chunk: a shaped link's burst allowance helps once per step, not once
        # per segment, and a chunk larger than the cache moves at memory speed. Every
        # step waits for its slowest pair: one that crosses nodes, if any. With several
        # ranks per node the ranks at a node's edge only send or only receive over
        # the network (the other neighbour is on their node); with one they do both.
        steps = 2 * (p - 1)
        reductions = (p - 1) * self.m.gamma.seconds(chunk) * s
        if nodes == 1:
            # Each rank works in its buffer and two chunks of scratch.
            return steps * self._step(chunk, s, crossing=False, footprint=n + 2 * chunk) + reductions
        # Two nodes of one rank send each other their chunks over one connection, both
        # directions at once: the measured exchange, step by step.
        if r == 1 and p == 2:
            return steps * self._step(chunk, s, crossing=True) + reductions
        # Otherwise every direction of a node's link carries one stream: the edge
        # ranks of a node of several send or receive; a rank alone on its node sends
        # to one node and receives from another, over two connections. The steps
        # follow each other without a pause, so a shaped link's bucket never refills:
        # the link runs at its sustained one-way rate.
        link = self.m.inter_oneway
        if chunk < TCP_EAGER_BYTES:
            # An eager message leaves without waiting for its receiver, so one step's
            # latency overlaps the previous step's transfer: a step takes the longer
            # of its share of the sustained rate and one message's own time.
            return steps * max(chunk * link.beta, link.message(chunk) + link.alpha * (s - 1)) + reductions
        # A larger message first asks its receiver (rendezvous): every step pays the
        # latency on top of the transfer.
        return steps * (link.alpha * s + chunk * link.beta) + reductions

    def recursive_doubling(self, n, p, r):
        if p == 1:
            return 0.0
        nodes, s = self._nodes(p, r), self.m.stretch(r)
        power = 1 << (p.bit_length() - 1)
        # The vector is copied into the message buffer (behind its header) and the
        # result back out: two copies of n besides the exchanges.
        t = 2 * self.m.copy.seconds(n) * s
        if power != p:  # fold the extra ranks in and back out
            t += 2 * self._step(n, s, crossing=nodes > 1) + self.m.gamma.seconds(n) * s
        for k in range(int(math.log2(power))):
            # Partners 2^k apart: on the node while 2^k < r; then every rank of a node
            # crosses at once, r flows on one link.
            crossing = nodes > 1 and (1 << k) >= r
            # Each rank works in its buffer and two message buffers of n bytes.
            t += self._step(n, s, crossing, flows=r, footprint=3 * n) + self.m.gamma.seconds(n) * s
        return t

    def _window_copy(self, n):
        """Seconds to copy n bytes between a rank's buffer and the shared window in
        256 KiB pieces. The window stays in cache, so only the buffer's side pays for
        the memory a buffer of n bytes lives in: the in-cache rate of a piece plus
        half of what a memcpy of n (which reads and writes that memory) pays above it."""
        in_cache = self.m.copy.per_byte(min(n, PIECE_BYTES))
        return n * (in_cache + max(0.0, self.m.copy.per_byte(n) - in_cache) / 2)

    def shared_memory(self, n, r):
        if r == 1:
            return 0.0
        pieces = max(1, math.ceil(n / PIECE_BYTES))
        piece = min(n, PIECE_BYTES)
        window = self.m.measured_window(r)
        if window:
            # Measured at r ranks on this node: the window broadcast of n is the first
            # pass through the window (memory-bound on the buffer's side when n is
            # large; with more ranks than cores, it includes their taking turns). The
            # reduce's reads of the peers' slots are a second crossing that stays in
            # cache: the window's rate for one piece. Then the additions and the
            # second barrier of every piece.
            return (window.seconds(n) + (r - 1) / r * n * window.per_byte(piece)
                    + ((r - 1) / r * n * self.m.gamma.per_byte(piece) + pieces * BARRIER_SECONDS) * self.m.stretch(r))
        # Per 256 KiB piece: copy in all but my own chunk, reduce my chunk over the r
        # slots in cache, copy the whole reduced piece out; two barriers. (A reduce to
        # one rank costs the same: that rank still copies every piece out.)
        t = (self._window_copy((r - 1) / r * n) + self._window_copy(n)
             + (r - 1) / r * n * self.m.gamma.per_byte(min(n, PIECE_BYTES)) + 2 * pieces * BARRIER_SECONDS)
        return t * self.m.stretch(r)

    def shared_memory_broadcast(self, n, r):
        if r == 1:
            return 0.0
        window = self.m.measured_window(r)
        if window:
            return window.seconds(n)
        # The root copies piece k+1 in while the others copy piece k out: one copy of
        # n on the critical path, one barrier per piece.
        pieces = max(1, math.ceil(n / PIECE_BYTES))
        return (self._window_copy(n) + pieces * BARRIER_SECONDS) * self.m.stretch(r)

    def hierarchical(self, n, p, r):
        nodes = self._nodes(p, r)
        node_stages = self.shared_memory(n, r) + self.shared_memory_broadcast(n, r)
        if nodes == 1:
            return node_stages
        # The other ranks of a node wait while their leader works: it has a core.
        leaders = self.recursive_doubling(n, nodes, 1) if n < SMALL_MESSAGE_BYTES else self.ring(n, nodes, 1)
        return node_stages + leaders

    def auto(self, n, p, r):
        """What AllreducePolicy picks: shared memory on one node, hierarchical across
        nodes, recursive doubling for small messages, the ring otherwise."""
        nodes = math.ceil(p / r)
        if nodes == 1 and p > 1:
            return self.shared_memory(n, p)
        if nodes > 1:
            return self.hierarchical(n, p, r)
        return self.recursive_doubling(n, p, r) if n < SMALL_MESSAGE_BYTES else self.ring(n, p, r)

    def predict(self, algorithm, n, p, r):
        if algorithm == "ring":
            return self.ring(n, p, r)
        if algorithm == "recursive-doubling":
            return self.recursive_doubling(n, p, r)
        if algorithm == "hierarchical":
            return self.hierarchical(n, p, r)
        if algorithm == "shared-memory":
            return self.shared_memory(n, r) if math.ceil(p / r) == 1 else None
        if algorithm == "auto":
            return self.auto(n, p, r)
        return None  # MPI_Allreduce's own choice is not modelled


def ddp_step(model, compute_seconds, bucket_bytes, p, r, overlap=True, algorithm="auto"):
    """Predicted seconds of one DDP step: compute (stretched when ranks share cores)
    plus the communication backward did not hide."""
    compute = compute_seconds * model.m.stretch(r)
    comm_each = [model.predict(algorithm, b, p, r) for b in bucket_bytes]
    comm = sum(comm_each)
    if not overlap or p == 1:
        exposed = comm
    else:
        exposed = max(comm - BACKWARD_SHARE * compute, comm_each[-1] if comm_each else 0.0)
    return compute + exposed, compute, exposed


class Compressor:
    """What a gradient compressor does to a bucket of b float32 bytes, learned from
    the compression sweep (Benchmarks/results/compression.csv, ddp-train's metrics):

        fraction    payload bytes per gradient byte, 1 / compression_ratio
        rounds      collectives per bucket: 1 (fp16, bf16: one narrow all-reduce),
                    2 (PowerSGD: P with the uncompressed tensors, then Q)
        gather      top-k: an all-gather of each rank's pairs instead of an
                    all-reduce, so what arrives grows with p: (p-1) * fraction * b
        seconds     compress + decompress seconds per step, measured on one node,
                    per gradient byte (they do not depend on p)

    The step adds the compute to backward's (the communication thread runs it on the
    same cores) and all-reduces (or gathers) the payload instead of the bucket."""

    def __init__(self, name, fraction, rounds, gather, seconds_per_byte):
        self.name, self.fraction, self.rounds, self.gather = name, fraction, rounds, gather
        self.seconds_per_byte = seconds_per_byte

    @staticmethod
    def learn(rows, model):
        """One compressor per method from the one-node rows of `model`."""
        learned = {}
        for r in rows:
            if r["model"] != model or r["placement"] != "one-node" or r["compress"] == "none":
                continue
            method = r["compress"]
            gradient_bytes = 4 * int(r["parameters"])
            seconds = (float(r["compress_seconds"]) + float(r["decompress_seconds"])) / max(1, int(r["steps"]))
            fraction = 1 / float(r["compression_ratio"])
            rounds = 2 if method.startswith("powersgd") else 1
            learned.setdefault(method, []).append(Compressor(method, fraction, rounds, method.startswith("topk"),
                                                             seconds / gradient_bytes))
        # The fastest round of each: slow phases of the machine only add time.
        return {m: min(cs, key=lambda c: c.seconds_per_byte) for m, cs in learned.items()}

    def communication(self, model, bucket_bytes, p, r):
        """Seconds of each bucket's collectives."""
        times = []
        for b in bucket_bytes:
            payload = self.fraction * b
            if self.gather:
                # A ring all-gather of p payloads: half a ring all-reduce of p times the bytes.
                t = model.predict("ring", max(4, int(p * payload)), p, r)
                times.append(t / 2 if t is not None else None)
            else:
                part = model.predict("auto", max(4, int(payload / self.rounds)), p, r)
                times.append(part * self.rounds if part is not None else None)
        return times


def ddp_step_compressed(model, compute_seconds, bucket_bytes, p, r, compressor, overlap=True):
    """`ddp_step` with each bucket compressed: the compression's compute added to the
    step's, its payload's collectives in place of the buckets' all-reduces."""
    if compressor is None:
        return ddp_step(model, compute_seconds, bucket_bytes, p, r, overlap)
    compute = (compute_seconds + compressor.seconds_per_byte * sum(bucket_bytes)) * model.m.stretch(r)
    comm_each = compressor.communication(model, bucket_bytes, p, r)
    if any(t is None for t in comm_each):
        return None
    comm = sum(comm_each)
    exposed = comm if not overlap or p == 1 else max(comm - BACKWARD_SHARE * compute, comm_each[-1] if comm_each else 0.0)
    return compute + exposed, compute, exposed


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main():
    parser = argparse.ArgumentParser(description="Fit the cost model and print its parameters and predictions.")
    parser.add_argument("--results", default=os.path.join(os.path.dirname(__file__), "..", "results"))
    args = parser.parse_args()
    machine = Machine.from_p2p(read_csv(os.path.join(args.results, "p2p.csv")))
    print(f"intra-node {machine.intra}")
    print(f"inter-node {machine.inter}")
    for n in [1 << 16, 1 << 20, 1 << 26]:
        print(f"at {n} B: reduce {1 / machine.gamma.per_byte(n) / 1e9:.1f} GB/s, copy {1 / machine.copy.per_byte(n) / 1e9:.1f} GB/s")
    print(f"{machine.cores} cores per node")
    model = AllreduceModel(machine)
    for p, r in [(2, 2), (4, 4), (2, 1), (4, 2)]:
        if math.ceil(p / r) > 1 and machine.inter is None:
            continue
        for n in [4, 1 << 16, 1 << 22, 1 << 26]:
            cells = []
            for a in ["ring", "recursive-doubling", "hierarchical", "shared-memory"]:
                t = model.predict(a, n, p, r)
                if t is not None:
                    cells.append(f"{a} {t * 1e6:.1f} us")
            print(f"p={p} r={r} n={n}: " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
