"""CPU and memory figures from /proc."""

import os
import subprocess
import time
import unittest

from lunarbench import procstat


class ProcStatTest(unittest.TestCase):
    def test_stat_fields_are_counted_after_the_command_name(self):
        # A command name with spaces and a parenthesis must not shift the fields.
        fields = ["S"] + [str(i) for i in range(4, 53)]
        fields[11], fields[12] = "250", "50"
        text = "1234 (tgtd (x) y) " + " ".join(fields)
        self.assertEqual(procstat.parse_stat_cpu_ticks(text), 300)

    def test_status_rss(self):
        text = "Name:\tlunard\nVmPeak:\t  2000 kB\nVmRSS:\t  1536 kB\nThreads:\t3\n"
        self.assertEqual(procstat.parse_status_rss_bytes(text), 1536 * 1024)
        self.assertIsNone(procstat.parse_status_rss_bytes("Name:\tx\n"))

    def test_own_process(self):
        self.assertGreater(procstat.rss_bytes(os.getpid()), 1 << 20)
        self.assertIsNotNone(procstat.cpu_seconds(os.getpid()))
        self.assertIsNone(procstat.cpu_seconds(2**22 + 12345))

    def test_window_sampler_sees_a_busy_process(self):
        # The machine may be shared, so compare with the CPU this process really got around the
        # window instead of expecting a whole core.
        now = time.monotonic()
        cpu_before = time.process_time()
        sampler = procstat.WindowSampler({"me": os.getpid()}, now + 0.05, now + 0.45)
        end = now + 0.5
        while time.monotonic() < end:
            pass
        cpu_used = time.process_time() - cpu_before
        cores = sampler.result()["me"]
        tick = 1 / procstat.CLOCK_TICKS_PER_S
        self.assertGreater(cores, 0.0)
        self.assertLessEqual(cores * 0.4, cpu_used + 2 * tick)

    def test_proc_stat_counts_the_given_cpus(self):
        text = (
            "cpu  100 0 50 1000 10 0 5 0 0 0\n"
            "cpu0 60 0 30 400 5 0 3 0 0 0\n"
            "cpu1 40 0 20 600 5 0 2 0 0 0\n"
            "intr 12345\n"
        )
        self.assertEqual(procstat.parse_proc_stat_cpus(text, [1]), (62, 667))
        self.assertEqual(procstat.parse_proc_stat_cpus(text, [0, 1]), (155, 1165))
        self.assertEqual(procstat.parse_proc_stat_cpus(text, [7]), (0, 0))

    def test_children_count_in_a_process_tree(self):
        # A child that burns CPU shows in its parent's tree, not in the parent alone.
        child = subprocess.Popen(
            ["python3", "-c", "import time\nend = time.time() + 0.6\nwhile time.time() < end: pass"]
        )
        try:
            time.sleep(0.5)
            self.assertIn(child.pid, procstat.child_pids(os.getpid()))
            own = procstat.cpu_seconds(os.getpid())
            tree = procstat.tree_cpu_seconds(os.getpid())
            self.assertGreater(tree, own)
        finally:
            child.wait()

    def test_window_sampler_reports_cpu_sets(self):
        now = time.monotonic()
        sampler = procstat.WindowSampler({}, now + 0.05, now + 0.3, cpu_sets={"all": [0]})
        end = now + 0.35
        while time.monotonic() < end:
            pass
        busy = sampler.result()["all"]
        self.assertGreaterEqual(busy, 0.0)
        self.assertLessEqual(busy, 1.0)

    def test_window_sampler_reports_busy_probes(self):
        readings = iter([(100, 400), (400, 1400)])
        now = time.monotonic()
        sampler = procstat.WindowSampler({}, now + 0.02, now + 0.12,
                                         probes={"reactors": lambda: next(readings),
                                                 "gone": lambda: None, "absent": None})
        time.sleep(0.2)
        out = sampler.result()
        self.assertAlmostEqual(out["reactors"], 0.3)
        # 300 µs busy over a window of about 0.1 s.
        self.assertGreater(out["reactors_busy_cores"], 0.0)
        self.assertLess(out["reactors_busy_cores"], 0.003 / 0.05)
        self.assertNotIn("gone", out)
        self.assertNotIn("absent", out)

    def test_window_sampler_cut_short_reports_nothing(self):
        now = time.monotonic()
        sampler = procstat.WindowSampler({"me": os.getpid()}, now + 5, now + 10)
        self.assertEqual(sampler.result(), {})


if __name__ == "__main__":
    unittest.main()
