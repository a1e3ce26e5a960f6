"""Unit tests of the cost model (run by `make test`): the fits recover known
parameters, and the algorithm formulas reduce to the textbook expressions."""

import math
import unittest

import costmodel
from costmodel import AllreduceModel, Link, Machine, Rate

KiB, MiB = 1 << 10, 1 << 20


def flat_rate(seconds_per_byte):
    return Rate([(64 * KiB, 64 * KiB * seconds_per_byte), (64 * MiB, 64 * MiB * seconds_per_byte)])


def machine(cores=1 << 20, inter=Link(20e-6, 1 / 1e9)):
    return Machine(intra=Link(1e-6, 1 / 10e9), inter=inter, gamma=flat_rate(1 / 20e9), copy=flat_rate(1 / 40e9), cores=cores)


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


class AlgorithmTests(unittest.TestCase):
    def test_ring_on_one_node_is_the_textbook_cost(self):
        m = machine()
        n, p = 8 * MiB, 4
        chunk = n / p
        segments = math.ceil(chunk / costmodel.SEGMENT_BYTES)
        expected = (2 * (p - 1) * (segments * m.intra.alpha + chunk * m.intra.beta)
                    + (p - 1) * chunk * m.gamma.per_byte(chunk))
        self.assertAlmostEqual(AllreduceModel(m).ring(n, p, p), expected, delta=expected * 1e-9)

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


if __name__ == "__main__":
    unittest.main()
