"""Goals, the markdown table and the chart, from a made-up run."""

import os
import tempfile
import unittest

from lunarbench import matrix, report


def metrics(iops, bw=None, p50=None, p99=None):
    lat = None if p50 is None else {"mean": p50, "p50": p50, "p99": p99, "p99_9": p99}
    return {"iops": iops, "bw_bytes_per_s": bw if bw is not None else iops * 4096,
            "ios": int(iops * 10), "errors": 0, "lat_us": lat}


def row(cell, target, m, cpu=None):
    return {"cell": cell, "title": cell, "target": target, "metrics": m, "error": None,
            "target_cpu_us_per_io": cpu, "client_cpu_cores": 0.5, "client_cpus_busy": 0.75}


def document():
    rows = [
        row("fio-4k-randread-1j", "tgt", metrics(7000, p50=127, p99=297), 40),
        row("fio-4k-randread-1j", "lunar", metrics(14000, p50=50, p99=200), 8),
        row("fio-4k-randread-8j", "tgt", metrics(22000), 41),
        row("fio-4k-randread-8j", "lunar", metrics(70000), 4),
        row("fio-4k-randwrite-8j", "tgt", metrics(20000), 45),
        row("fio-4k-randwrite-8j", "lunar", metrics(50000), 6),
        row("fio-128k-read-4j", "tgt", metrics(8000, bw=1 << 30)),
        row("fio-128k-read-4j", "lunar", metrics(20000, bw=3 << 30)),
        row("fio-128k-write-4j", "tgt", metrics(4000, bw=600 << 20)),
        row("fio-128k-write-4j", "lunar", metrics(12000, bw=1500 << 20)),
        row("iscsi-perf-4k-qd32", "tgt", metrics(28000)),
        row("iscsi-perf-4k-qd32", "lunar", metrics(150000)),
        row("load-4k-randread-8s", "tgt", metrics(25000), 40),
        row("load-4k-randread-8s", "lunar", metrics(200000), 5),
        row("load-4k-randread-64s", "lunar", metrics(190000)),
        row("raw-4k-randread-qd32", "raw", metrics(230000, p50=100, p99=200)),
    ]
    rows[-1]["title"] = "raw io_uring"
    return {
        "meta": {"date": "20261122T000000Z", "command": "bench/run.sh", "cpus": 2,
                 "kernel": "6.x", "backing": "loop", "lunard_version": "lunard 0.1.0",
                 "tgt_version": "tgt 1.0.85", "fio_version": "fio-3.33", "cores": 1,
                 "poll_mode": "busy", "target_cpus": [0], "client_cpus": [1],
                 "runtime_s": 15, "ramp_s": 2},
        "cell_order": [{"id": c.id, "title": c.title, "bs": c.bs}
                       for c in matrix.TARGET_CELLS],
        "cells": rows,
        "idle_sessions": {"lunar": {"sessions": 64, "rss_before_bytes": 10 << 20,
                                    "rss_after_bytes": 12 << 20,
                                    "per_session_bytes": (2 << 20) / 64}},
    }


class GoalsTest(unittest.TestCase):
    def test_goals_are_computed_from_the_cells(self):
        doc = document()
        results = {(r["cell"], r["target"]): r for r in doc["cells"]}
        goals = {g["goal"].split(":")[0]: g for g in report.goals(results)}
        eight = goals["4 KiB random, 8 sessions (fio 8 jobs, read and write)"]
        self.assertAlmostEqual(eight["value"], 2.5)  # the write ratio is the smaller
        self.assertFalse(eight["met"])
        perf = goals["4 KiB random, one session at QD32 (iscsi-perf)"]
        self.assertTrue(perf["met"])
        cpu = goals["target CPU per 4 KiB I/O (fio randread 8 jobs)"]
        self.assertAlmostEqual(cpu["value"], 41 / 4)
        self.assertTrue(cpu["met"])
        saturated = goals["target CPU per 4 KiB I/O, both targets saturated (lunar-load randread 8 x QD16)"]
        self.assertAlmostEqual(saturated["value"], 40 / 5)
        self.assertTrue(saturated["met"])
        p50 = goals["4 KiB QD1 randread p50 latency"]
        self.assertAlmostEqual(p50["value"], 50 / 127)
        self.assertTrue(p50["met"])
        self.assertTrue(goals["4 KiB QD1 randread"]["met"])  # 200 <= 2 * 127
        self.assertTrue(goals["128 KiB sequential, 4 jobs (read and write)"]["met"])
        many = [g for g in report.goals(results) if g["goal"].startswith("64 sessions")]
        self.assertAlmostEqual(many[0]["value"], 0.95)
        self.assertTrue(many[0]["met"])
        self.assertIsNone(many[1]["value"])  # no fio 64-job cell in this run
        self.assertIsNone(many[1]["met"])

    def test_throughput_goals_tell_how_busy_the_client_was(self):
        doc = document()
        for r in doc["cells"]:
            if (r["cell"], r["target"]) == ("fio-4k-randwrite-8j", "lunar"):
                r["client_cpus_busy"] = 0.97
        results = {(r["cell"], r["target"]): r for r in doc["cells"]}
        goals = {g["goal"].split(":")[0]: g for g in report.goals(results)}
        # The busiest of lunar's runs of the goal's cells.
        self.assertEqual(goals["4 KiB random, 8 sessions (fio 8 jobs, read and write)"]
                         ["client_cpus_busy"], 0.97)
        self.assertEqual(goals["4 KiB random, one session at QD32 (iscsi-perf)"]
                         ["client_cpus_busy"], 0.75)
        # Latency goals are about the target alone.
        self.assertIsNone(goals["4 KiB QD1 randread p50 latency"]["client_cpus_busy"])
        doc["goals"] = report.goals(results)
        self.assertIn("| ≥ 3.0 | no | 97% |", report.markdown(doc))

    def test_goals_and_cells_tell_how_busy_lunars_reactors_were(self):
        doc = document()
        for r in doc["cells"]:
            if r["target"] == "lunar" and r["cell"].startswith("fio-4k-rand"):
                r["target_reactors_busy"] = 0.4 if "read" in r["cell"] else 0.55
                r["target_busy_us_per_io"] = 3.25
        results = {(r["cell"], r["target"]): r for r in doc["cells"]}
        goals = {g["goal"].split(":")[0]: g for g in report.goals(results)}
        self.assertEqual(goals["4 KiB random, 8 sessions (fio 8 jobs, read and write)"]
                         ["lunar_reactors_busy"], 0.55)
        self.assertEqual(goals["target CPU per 4 KiB I/O (fio randread 8 jobs)"]
                         ["lunar_reactors_busy"], 0.4)
        self.assertIsNone(goals["4 KiB random, one session at QD32 (iscsi-perf)"]
                          ["lunar_reactors_busy"])
        doc["goals"] = report.goals(results)
        text = report.markdown(doc)
        self.assertIn("| ≥ 3.0 | no | 75% | 55% |", text)
        line = next(x for x in text.splitlines() if x.startswith("| fio 4 KiB randread, 8 jobs |"))
        self.assertIn("| 4.0 | 40% | 3.2 |", line)


class MarkdownTest(unittest.TestCase):
    def test_table_has_every_cell_ratios_ceiling_and_idle_sessions(self):
        doc = document()
        results = {(r["cell"], r["target"]): r for r in doc["cells"]}
        doc["goals"] = report.goals(results)
        text = report.markdown(doc)
        for cell in matrix.TARGET_CELLS:
            self.assertIn(f"| {cell.title} |", text)
        self.assertIn("| 7,000 | 14,000 | 2.00 |", text)
        self.assertIn("127/297/297", text)
        self.assertIn("raw io_uring: 230,000 IOPS", text)
        self.assertIn("32.0 KiB per session", text)
        self.assertIn("| ≥ 3.0 | no |", text)
        self.assertIn("| 0.50/0.50 | 75%/75% |", text)


class ChartTest(unittest.TestCase):
    def test_chart_is_a_png_when_matplotlib_is_there(self):
        doc = document()
        doc["goals"] = []
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "chart.png")
            if not report.chart(path, doc):
                self.skipTest("matplotlib is not installed")
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


class MatrixTest(unittest.TestCase):
    def test_select(self):
        cells = [*matrix.RAW_CELLS, *matrix.TARGET_CELLS]
        self.assertEqual(len(matrix.select(cells, [])), len(cells))
        picked = matrix.select(cells, ["fio-4k-randread-1j", "raw-4k-randread-qd1"])
        self.assertEqual([c.id for c in picked], ["raw-4k-randread-qd1", "fio-4k-randread-1j"])
        with self.assertRaises(ValueError):
            matrix.select(cells, ["nope"])
        self.assertEqual(len({c.id for c in cells}), len(cells))


if __name__ == "__main__":
    unittest.main()
