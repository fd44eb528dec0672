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

    def test_commands(self):
        self.assertEqual(profile.record_cmd(42, 12.5, "/tmp/x.data"),
                         ["perf", "record", "-q", "-g", "-p", "42", "-o", "/tmp/x.data",
                          "--", "sleep", "12.5"])
        report = profile.report_cmd("/tmp/x.data")
        self.assertEqual(report[:3], ["perf", "report", "-i"])
        self.assertIn("comm,dso,sym", report)


if __name__ == "__main__":
    unittest.main()
