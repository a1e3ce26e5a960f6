"""Unit tests of the cost model (run by `make test`): the fits recover known
parameters, and the algorithm formulas reduce to the textbook expressions."""

import math
import unittest

import costmodel
from costmodel import AllreduceModel, Link, Machine, Rate

KiB, MiB = 1 << 10, 1 << 20


def flat_rate(seconds_per_byte):
    return Rate([(64 * KiB, 64 * KiB * seconds_per_byte), (64 * MiB, 64 * MiB * seconds_per_byte)])


def machine(cores=1 << 20, inter=Link(20e-6, 1 / 1e9), inter_oneway=None, crowded=None):
    return Machine(intra=Link(1e-6, 1 / 10e9), inter=inter, gamma=flat_rate(1 / 20e9), copy=flat_rate(1 / 40e9), cores=cores,
                   inter_oneway=inter_oneway, crowded=crowded)


class FitTests(unittest.TestCase):
    def test_fit_link_recovers_alpha_and_beta(self):
        alpha, beta = 3e-6, 1 / 2.5e9
        sizes = [4 << (2 * k) for k in range(13)]  # 4 B .. 64 MiB
        fitted_alpha, fitted_beta = costmodel.fit_link([(n, alpha + n * beta) for n in sizes])
        self.assertAlmostEqual(fitted_alpha, alpha, delta=alpha * 0.01)
        self.assertAlmostEqual(fitted_beta, beta, delta=beta * 1e-6)

    def test_fit_link_ignores_a_constant_burst_bonus_of_large_messages(self):
        # A shaped link sends the first 256 KiB of a message at line rate: a constant
        # saving on large messages that must not bend beta.
        alpha, beta, bonus = 10e-6, 1 / 0.5e9, 400e-6
        points = [(n, alpha + n * beta - (bonus if n >= MiB else 0)) for n in [4, 64, 1024, MiB, 4 * MiB, 16 * MiB]]
        self.assertAlmostEqual(costmodel.fit_link(points)[1], beta, delta=beta * 1e-6)

    def test_fit_link_needs_both_regimes(self):
        with self.assertRaises(ValueError):
            costmodel.fit_link([(4, 1e-6), (64, 1e-6)])

    def test_rate_interpolates_on_a_log_scale_and_holds_beyond_the_ends(self):
        rate = Rate([(1 * MiB, 1 * MiB * 1e-10), (4 * MiB, 4 * MiB * 3e-10)])
        self.assertAlmostEqual(rate.per_byte(2 * MiB), 2e-10)
        self.assertAlmostEqual(rate.per_byte(4), 1e-10)
        self.assertAlmostEqual(rate.per_byte(1 << 30), 3e-10)

    def test_machine_from_p2p_rows(self):
        rows = []
        for n in [4, 1024, MiB, 4 * MiB]:
            for kind, same, t in [("exchange", "true", 1e-6 + n / 5e9), ("exchange", "false", 30e-6 + n / 1e9),
                                  ("reduce", "true", n / 20e9), ("memcpy", "true", n / 40e9)]:
                rows.append(dict(measurement=kind, same_node=same, bytes=str(n), time_us=str(t * 1e6),
                                 placement="one-node" if same == "true" else "simulated-cluster", cores="2"))
        m = Machine.from_p2p(rows)
        self.assertAlmostEqual(m.intra.alpha, 1e-6, delta=1e-9)
        self.assertAlmostEqual(1 / m.inter.beta, 1e9, delta=1e3)
        self.assertAlmostEqual(1 / m.gamma.per_byte(MiB), 20e9, delta=1e3)
        self.assertEqual(m.cores, 2)
        self.assertEqual(m.crowded, {})

    def test_runs_with_more_ranks_than_cores_add_a_crowded_link_and_leave_the_pairs_fit_alone(self):
        rows = []
        for n in [4, 1024, MiB, 4 * MiB]:
            for ranks, kind, t in [(2, "exchange", 1e-6 + n / 5e9), (2, "reduce", n / 20e9), (2, "memcpy", n / 40e9),
                                   (4, "exchange", 9e-6 + n / 1e9), (4, "shift", 3e-6 + n / 2e9), (4, "reduce", n / 1e9)]:
                rows.append(dict(measurement=kind, ranks=str(ranks), same_node="true", bytes=str(n), time_us=str(t * 1e6),
                                 placement="one-node", cores="2"))
        m = Machine.from_p2p(rows)
        self.assertAlmostEqual(1 / m.intra.beta, 5e9, delta=1e3)
        self.assertAlmostEqual(1 / m.gamma.per_byte(MiB), 20e9, delta=1e3)
        self.assertEqual(sorted(m.crowded), [2.0])
        self.assertAlmostEqual(1 / m.crowded[2.0].beta, 2e9, delta=1e3)


class AlgorithmTests(unittest.TestCase):
    def test_ring_on_one_node_is_the_textbook_cost(self):
        m = machine()
        n, p = 8 * MiB, 4
        chunk = n / p
        expected = 2 * (p - 1) * (m.intra.alpha + chunk * m.intra.beta) + (p - 1) * chunk * m.gamma.per_byte(chunk)
        self.assertAlmostEqual(AllreduceModel(m).ring(n, p, p), expected, delta=expected * 1e-9)

    def test_ring_across_nodes_streams_one_way_at_the_sustained_rate_unless_two_single_ranks_exchange(self):
        # Measured points with a burst bonus must not speed up a stream that never pauses.
        oneway = Link(10e-6, 1 / 0.5e9, measured=[(64 * KiB, 20e-6), (MiB, 1e-3), (16 * MiB, 32e-3)])
        m = machine(inter_oneway=oneway)
        n, p = 4 * MiB, 4
        chunk = n / p
        expected = 2 * (p - 1) * (oneway.alpha + chunk * oneway.beta) + (p - 1) * chunk * m.gamma.per_byte(chunk)
        self.assertAlmostEqual(AllreduceModel(m).ring(n, p, 2), expected, delta=expected * 1e-9)
        # Eager chunks overlap a step's latency with the last step's transfer: a step
        # is the longer of its share of the sustained rate and one message's time.
        small = 64 * KiB  # 16 KiB chunks; a rank per core, so nothing stretches
        step = max((small / p) * oneway.beta, oneway.message(small / p))
        eager = 2 * (p - 1) * step + (p - 1) * (small / p) * m.gamma.per_byte(small / p)
        self.assertAlmostEqual(AllreduceModel(m).ring(small, p, 2), eager, delta=eager * 1e-9)
        self.assertLess(eager, 2 * (p - 1) * (oneway.alpha + (small / p) * oneway.beta))
        # Two nodes of one rank exchange both ways over one connection: the exchange
        # link, step by step.
        both = 2 * (m.inter.alpha + (n / 2) * m.inter.beta) + (n / 2) * m.gamma.per_byte(n / 2)
        self.assertAlmostEqual(AllreduceModel(m).ring(n, 2, 1), both, delta=both * 1e-9)
        # Four nodes of one rank: each rank sends to one node and receives from another,
        # one stream per direction of a link, as with several ranks per node.
        self.assertAlmostEqual(AllreduceModel(m).ring(n, p, 1), expected, delta=expected * 1e-9)

    def test_a_node_local_step_moves_at_the_rate_of_the_collectives_memory_not_the_messages(self):
        # Shared memory measured in cache up to 2 MiB, at a third of the speed from 4 MiB.
        intra = Link(1e-6, 1 / 3e9, measured=[(KiB, 1e-6), (2 * MiB, 2 * MiB / 9e9), (4 * MiB, 4 * MiB / 3e9),
                                              (32 * MiB, 32 * MiB / 3e9)])
        m = Machine(intra=intra, inter=None, gamma=flat_rate(1 / 20e9), copy=flat_rate(1 / 40e9), cores=1 << 20)
        n, p = 8 * MiB, 4
        chunk = n / p
        # The ring's 2 MiB step works in 12 MiB per rank (buffer and two chunks of
        # scratch): it moves at the rate of a 6 MiB message, out of cache.
        like = (n + 2 * chunk) / 2
        expected = 6 * intra.message(like) * chunk / like + 3 * chunk * m.gamma.per_byte(chunk)
        self.assertAlmostEqual(AllreduceModel(m).ring(n, p, p), expected, delta=expected * 1e-9)
        self.assertGreater(intra.message(like) * chunk / like, 2 * intra.message(chunk))
        # Recursive doubling works in its buffer and two message buffers: a 1.5 n message.
        rd = 2 * n * m.copy.per_byte(n) + intra.message(1.5 * n) / 1.5 + n * m.gamma.per_byte(n)
        self.assertAlmostEqual(AllreduceModel(m).recursive_doubling(n, 2, 2), rd, delta=rd * 1e-9)

    def test_recursive_doubling_pays_two_copies_besides_its_exchanges(self):
        m = machine()
        n = MiB
        expected = 2 * n * m.copy.per_byte(n) + (m.intra.alpha + n * m.intra.beta) + n * m.gamma.per_byte(n)
        self.assertAlmostEqual(AllreduceModel(m).recursive_doubling(n, 2, 2), expected, delta=expected * 1e-9)

    def test_one_rank_costs_nothing(self):
        model = AllreduceModel(machine())
        for algorithm in ["ring", "recursive-doubling", "hierarchical", "shared-memory", "auto"]:
            self.assertEqual(model.predict(algorithm, MiB, 1, 1), 0.0, algorithm)

    def test_hierarchical_beats_the_flat_ring_across_nodes_for_large_messages(self):
        model = AllreduceModel(machine())
        for nodes, per_node in [(2, 2), (4, 8), (64, 32)]:
            p = nodes * per_node
            self.assertLess(model.hierarchical(64 * MiB, p, per_node), model.ring(64 * MiB, p, per_node), (nodes, per_node))

    def test_recursive_doubling_shares_the_link_among_a_nodes_ranks(self):
        model = AllreduceModel(machine())
        one_per_node = model.recursive_doubling(MiB, 2, 1)
        two_per_node = model.recursive_doubling(MiB, 4, 2)
        # The crossing exchange carries two flows, so it takes about twice as long.
        self.assertGreater(two_per_node, 1.8 * one_per_node)

    def test_ranks_beyond_the_cores_stretch_cpu_work(self):
        roomy = AllreduceModel(machine(cores=4)).shared_memory(MiB, 4)
        crowded = AllreduceModel(machine(cores=2)).shared_memory(MiB, 4)
        self.assertAlmostEqual(crowded, 2 * roomy, delta=roomy * 1e-9)

    def test_a_measured_window_prices_the_shared_memory_stages_on_nodes_like_the_measured_one(self):
        window = flat_rate(1 / 8e9)
        m = Machine(intra=Link(1e-6, 1 / 10e9), inter=None, gamma=flat_rate(1 / 20e9), copy=flat_rate(1 / 40e9), cores=2,
                    window={2: window}, window_cores=2)
        model = AllreduceModel(m)
        n = 4 * MiB
        self.assertAlmostEqual(model.shared_memory_broadcast(n, 2), window.seconds(n))
        pieces = n // costmodel.PIECE_BYTES
        expected = window.seconds(n) + n / 2 / 8e9 + n / 2 / 20e9 + pieces * costmodel.BARRIER_SECONDS
        self.assertAlmostEqual(model.shared_memory(n, 2), expected, delta=expected * 1e-9)
        # Nodes with other core counts (the simulated ones) fall back to the copy model.
        self.assertIsNone(m.with_cores(1).measured_window(2))
        self.assertIsNone(m.measured_window(4))

    def test_a_measured_crowded_step_replaces_the_stretched_exchange(self):
        shift = Link(5e-6, 1 / 1e9)
        stretched = AllreduceModel(machine(cores=2)).ring(4 * MiB, 4, 4)
        measured = AllreduceModel(machine(cores=2, crowded={2.0: shift})).ring(4 * MiB, 4, 4)
        chunk = MiB
        reductions = 3 * chunk * machine().gamma.per_byte(chunk) * 2
        self.assertAlmostEqual(measured, 6 * shift.message(chunk) + reductions, delta=measured * 1e-9)
        self.assertNotAlmostEqual(measured, stretched)

    def test_without_an_inter_node_link_multi_node_predictions_are_refused(self):
        with self.assertRaises(ValueError):
            AllreduceModel(machine(inter=None)).ring(MiB, 4, 2)


class StepTests(unittest.TestCase):
    def test_overlap_hides_communication_up_to_backward_but_never_the_last_bucket(self):
        model = AllreduceModel(machine())
        buckets = [MiB, 16 * MiB]
        last = model.auto(16 * MiB, 8, 4)
        step, compute, exposed = costmodel.ddp_step(model, 1.0, buckets, 8, 4, overlap=True)
        self.assertEqual(compute, 1.0)
        self.assertAlmostEqual(exposed, last)
        _, _, serial = costmodel.ddp_step(model, 1.0, buckets, 8, 4, overlap=False)
        self.assertAlmostEqual(serial, model.auto(MiB, 8, 4) + last)
        self.assertAlmostEqual(step, compute + exposed)



class CompressorTests(unittest.TestCase):
    """The compressors' step: learned from the sweep's rows, reducing to the plain
    step when they change nothing, and charging what they do."""

    def model(self):
        return AllreduceModel(machine())

    def row(self, method, ratio, seconds):
        return dict(model="mlp", placement="one-node", compress=method, parameters=str(10_000_000), steps="10",
                    compress_seconds=str(seconds / 2), decompress_seconds=str(seconds / 2), compression_ratio=str(ratio))

    def test_a_compressor_that_changes_nothing_is_the_plain_step(self):
        identity = costmodel.Compressor("same", 1.0, 1, False, 0.0)
        buckets = [MiB, 25 * MiB]
        for p, r in [(8, 1), (64, 8)]:
            plain = costmodel.ddp_step(self.model(), 0.1, buckets, p, r)
            same = costmodel.ddp_step_compressed(self.model(), 0.1, buckets, p, r, identity)
            for a, b in zip(plain, same):
                self.assertAlmostEqual(a, b)

    def test_learned_from_the_sweep(self):
        learned = costmodel.Compressor.learn([self.row("fp16", 2.0, 0.05), self.row("powersgd:4", 171.0, 0.4),
                                              self.row("topk:0.01", 50.0, 1.0), self.row("none", 1.0, 0.0)], "mlp")
        self.assertEqual(sorted(learned), ["fp16", "powersgd:4", "topk:0.01"])
        self.assertAlmostEqual(learned["fp16"].fraction, 0.5)
        self.assertEqual(learned["powersgd:4"].rounds, 2)
        self.assertTrue(learned["topk:0.01"].gather)
        # 0.05 s over 10 steps of 40 MB of gradients.
        self.assertAlmostEqual(learned["fp16"].seconds_per_byte, 0.005 / 40e6)

    def test_fewer_bytes_pay_on_a_slow_link_and_gathers_grow_with_the_ranks(self):
        fp16 = costmodel.Compressor("fp16", 0.5, 1, False, 0.0)
        topk = costmodel.Compressor("topk", 0.02, 1, True, 0.0)
        buckets = [25 * MiB]
        plain = costmodel.ddp_step(self.model(), 0.01, buckets, 16, 1)[0]
        self.assertLess(costmodel.ddp_step_compressed(self.model(), 0.01, buckets, 16, 1, fp16)[0], plain)
        small = costmodel.ddp_step_compressed(self.model(), 0.01, buckets, 8, 1, topk)[2]
        large = costmodel.ddp_step_compressed(self.model(), 0.01, buckets, 512, 1, topk)[2]
        self.assertGreater(large, 10 * small, "each rank receives every other rank's pairs")


if __name__ == "__main__":
    unittest.main()
