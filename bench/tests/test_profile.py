"""The perf commands of `--profile` and the reading of perf's report."""

import unittest

from lunarbench import profile

REPORT = """\
# To display the perf.data header info, please use --header/--header-only options.
#
# Samples: 6K of event 'cycles'
#
# Overhead  Command          Shared Object      Symbol
# ........  ...............  .................  ...............................
#
     2.50%  lunar-reactor-0  lunard             [.] lunar_reactor::reactor::Reactor::run
    12.26%  lunar-reactor-0  libc.so.6          [.] __memmove_avx_unaligned_erms
    10.38%  lunar-reactor-0  [kernel.kallsyms]  [k] rep_movs_alternative
     0.01%  lunard           lunard             [.] lunar_daemon::server::control_loop


#
# (Tip: Show user configuration overrides: perf config --user --list)
#
"""


class ProfileTest(unittest.TestCase):
    def test_sample_lines_come_most_first_and_bounded(self):
        lines = profile.top_lines(REPORT)
        self.assertEqual(len(lines), 4)
        self.assertTrue(lines[0].startswith("12.26%"))
        self.assertIn("__memmove_avx_unaligned_erms", lines[0])
        self.assertTrue(lines[1].startswith("10.38%"))
        self.assertTrue(lines[-1].startswith("0.01%"))
        self.assertEqual(len(profile.top_lines(REPORT, limit=2)), 2)
        self.assertEqual(profile.top_lines("# only comments\n\n"), [])

    def test_instruction_counts_are_read_from_perf_stat_csv(self):
        text = ("# started on Sun Nov 22 08:43:37 2026\n\n"
                "287630,,instructions:u,13165385,100.00,,\n"
                "894420,,instructions:k,13165385,100.00,,\n")
        self.assertEqual(profile.parse_stat(text), {"user": 287630, "kernel": 894420})
        self.assertEqual(profile.parse_stat("<not counted>,,instructions:u,0,0.00,,\n"), {})

    def test_instructions_per_io_over_the_window(self):
        profiler = profile.WindowProfiler.__new__(profile.WindowProfiler)
        profiler.instructions = {"user": 6_000_000, "kernel": 3_000_000}
        profiler.seconds = 2.0
        self.assertEqual(profiler.instructions_per_io(1000), {"user": 3000.0, "kernel": 1500.0})
        self.assertEqual(profiler.instructions_per_io(0), {})

    def test_commands(self):
        self.assertEqual(profile.record_cmd(42, 12.5, "/tmp/x.data"),
                         ["perf", "record", "-q", "-g", "-p", "42", "-o", "/tmp/x.data",
                          "--", "sleep", "12.5"])
        self.assertEqual(profile.stat_cmd(42, 3.0, "/tmp/x.stat"),
                         ["perf", "stat", "-x", ",", "-e", "instructions:u,instructions:k",
                          "-p", "42", "-o", "/tmp/x.stat", "--", "sleep", "3.0"])
        report = profile.report_cmd("/tmp/x.data")
        self.assertEqual(report[:3], ["perf", "report", "-i"])
        self.assertIn("comm,dso,sym", report)


if __name__ == "__main__":
    unittest.main()
