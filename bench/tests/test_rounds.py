"""Several rounds folded into medians: the rows, the goals, the table and the run order."""

import unittest

from lunarbench import cli, matrix, report, rounds
from tests.test_report import document, metrics, row


def tagged(r, round_no):
    return {**r, "round": round_no}


def three_rounds():
    """The made-up run of test_report three times; round 2 has a slow tgt, round 3 a failed
    lunar fio 8-job cell."""
    rows = []
    for round_no in (1, 2, 3):
        for r in document()["cells"]:
            r = tagged(r, round_no)
            if round_no == 2 and r["target"] == "tgt":
                r["metrics"] = {**r["metrics"], "iops": r["metrics"]["iops"] / 2}
            if round_no == 3 and (r["cell"], r["target"]) == ("fio-4k-randread-8j", "lunar"):
                r.update(metrics=None, error="client timed out")
            rows.append(r)
    return rows


class FoldTest(unittest.TestCase):
    def test_figures_are_medians_over_the_rounds_that_measured_them(self):
        rows = [tagged(row("c", "lunar", metrics(iops, p50=p50, p99=p50 * 2), cpu), n)
                for n, (iops, p50, cpu) in enumerate([(100, 50, 9), (300, 70, 5), (200, 90, 7)],
                                                     1)]
        (folded,) = rounds.fold(rows)
        self.assertEqual(folded["metrics"]["iops"], 200)
        self.assertEqual(folded["metrics"]["lat_us"]["p50"], 70)
        self.assertEqual(folded["metrics"]["lat_us"]["p99"], 140)
        self.assertEqual(folded["target_cpu_us_per_io"], 7)
        self.assertEqual(folded["round_iops"], [100, 300, 200])
        self.assertEqual(folded["rounds"], 3)
        self.assertIsNone(folded["error"])

    def test_a_failed_round_is_left_out_and_noted(self):
        folded = {(r["cell"], r["target"]): r for r in rounds.fold(three_rounds())}
        fio8 = folded[("fio-4k-randread-8j", "lunar")]
        self.assertEqual(fio8["round_iops"], [70000, 70000, None])
        self.assertEqual(fio8["metrics"]["iops"], 70000)
        self.assertEqual(fio8["round_errors"], ["client timed out"])
        self.assertIsNone(fio8["error"])

    def test_a_cell_failed_in_every_round_keeps_its_error(self):
        rows = [tagged({"cell": "c", "title": "c", "target": "tgt", "metrics": None,
                        "error": f"boom {n}"}, n) for n in (1, 2)]
        (folded,) = rounds.fold(rows)
        self.assertIsNone(folded["metrics"])
        self.assertEqual(folded["error"], "boom 1")
        self.assertEqual(folded["round_iops"], [None, None])


class GoalsTest(unittest.TestCase):
    def test_each_goal_is_the_median_of_its_round_values(self):
        goals = {g["goal"].split(":")[0]: g for g in rounds.goals(three_rounds())}
        perf = goals["4 KiB random, one session at QD32 (iscsi-perf)"]
        single = {g["goal"].split(":")[0]: g for g in report.goals(
            {(r["cell"], r["target"]): r for r in document()["cells"]})}
        one = single["4 KiB random, one session at QD32 (iscsi-perf)"]["value"]
        # Round 2's tgt ran at half speed: its ratio doubles, and the median ignores it.
        self.assertEqual(perf["round_values"], [one, 2 * one, one])
        self.assertEqual(perf["value"], one)
        self.assertEqual(perf["met"], one >= 5.0)
        # The round whose lunar 8-job cell failed gives no value for that goal.
        fio8 = goals["4 KiB random, 8 sessions (fio 8 jobs, read and write)"]
        self.assertIsNone(fio8["round_values"][2])
        self.assertIsNotNone(fio8["value"])


class ReactorBusyTest(unittest.TestCase):
    def test_the_reactors_busy_share_is_folded_and_carried_by_the_goals(self):
        rows = three_rounds()
        for r in rows:
            if (r["cell"], r["target"]) == ("load-4k-randread-8s", "lunar"):
                r["target_reactors_busy"] = {1: 0.5, 2: 0.9, 3: 0.6}[r["round"]]
        folded = report.by_cell(rounds.fold(rows))
        self.assertEqual(folded[("load-4k-randread-8s", "lunar")]["target_reactors_busy"], 0.6)
        goals = {g["goal"].split(":")[0]: g for g in rounds.goals(rows)}
        saturated = goals["target CPU per 4 KiB I/O, both targets saturated (lunar-load randread "
                          "8 x QD16)"]
        self.assertEqual(saturated["lunar_reactors_busy"], 0.6)


class TableTest(unittest.TestCase):
    def test_table_shows_round_ratios_and_their_median(self):
        rows = three_rounds()
        doc = document()
        doc["meta"]["rounds"] = 3
        doc.update(cells=rounds.fold(rows), round_cells=rows, goals=rounds.goals(rows))
        text = report.markdown(doc)
        self.assertIn("median of 3 rounds", text)
        perf_line = next(line for line in text.splitlines()
                         if line.startswith("| iscsi-perf 4 KiB randread QD32"))
        # Ratios 5.36, 10.71, 5.36 by round: the median is 5.36.
        self.assertTrue(perf_line.endswith("| 5.36 10.71 5.36 |"), perf_line)
        self.assertIn("| 5.36 |", perf_line)
        self.assertIn("| goal | median | wanted | met | client CPUs busy | lunar reactors busy | "
                      "per round |", text)

    def test_one_round_keeps_the_plain_table(self):
        doc = document()
        doc["goals"] = report.goals({(r["cell"], r["target"]): r for r in doc["cells"]})
        text = report.markdown(doc)
        self.assertNotIn("per round", text)
        self.assertIn("| goal | measured | wanted | met |", text)


class RunOrderTest(unittest.TestCase):
    def test_rounds_repeat_the_matrix_and_flip_which_target_goes_first(self):
        cells = [*matrix.RAW_CELLS[:1], *matrix.TARGET_CELLS[:2]]
        runs = cli.run_order(cells, ["tgt", "lunar"], 2)
        self.assertEqual([(n, c.id, t) for n, c, t in runs], [
            (1, cells[0].id, None),
            (1, cells[1].id, "tgt"), (1, cells[1].id, "lunar"),
            (1, cells[2].id, "lunar"), (1, cells[2].id, "tgt"),
            (2, cells[0].id, None),
            (2, cells[1].id, "lunar"), (2, cells[1].id, "tgt"),
            (2, cells[2].id, "tgt"), (2, cells[2].id, "lunar"),
        ])

    def test_rounds_below_one_are_refused(self):
        with self.assertRaises(SystemExit):
            cli.parse_args(["--rounds", "0"])
        self.assertEqual(cli.parse_args([]).rounds, 1)


if __name__ == "__main__":
    unittest.main()
