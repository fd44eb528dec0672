"""Command line defaults and the client command of each kind of cell."""

import unittest

from lunarbench import cli, matrix


class ArgsTest(unittest.TestCase):
    def test_full_and_quick_defaults(self):
        full = cli.parse_args([])
        self.assertEqual((full.runtime_s, full.ramp_s, full.size), (15.0, 2.0, 2 << 30))
        self.assertEqual((full.cores, full.poll_mode, full.idle_sessions), (1, "busy", 64))
        self.assertEqual(full.targets, ["tgt", "lunar"])
        quick = cli.parse_args(["--quick"])
        self.assertEqual((quick.runtime_s, quick.size, quick.idle_sessions), (2.0, 512 << 20, 16))
        self.assertEqual(cli.parse_args(["--size", "4g"]).size, 4 << 30)
        self.assertEqual(cli.parse_args(["--cells", "a,b"]).cells, ["a", "b"])

    def test_bad_values_are_refused(self):
        for argv in (["--targets", "spdk"], ["--runtime-s", "1"], ["--poll-mode", "x"]):
            with self.assertRaises(SystemExit):
                cli.parse_args(argv)


class CommandLineTest(unittest.TestCase):
    def command(self, cell_id, url="iscsi://h:1/iqn.x:y/0"):
        args = cli.parse_args([])
        cell = next(c for c in (*matrix.RAW_CELLS, *matrix.TARGET_CELLS) if c.id == cell_id)
        return cli.command_line(cell, url, "/dev/loop9", "fio", "lunar-load", args)

    def test_each_kind(self):
        fio = self.command("fio-4k-randwrite-8j")
        self.assertEqual(fio[0], "fio")
        self.assertIn("--ioengine=libiscsi", fio)
        self.assertIn("--numjobs=8", fio)
        self.assertIn("--rw=randwrite", fio)
        raw = self.command("raw-4k-randread-qd32", url=None)
        self.assertIn("--filename=/dev/loop9", raw)
        self.assertIn("--iodepth=32", raw)
        perf = self.command("iscsi-perf-4k-qd32")
        self.assertEqual(perf[:8], ["iscsi-perf", "-m", "32", "-b", "8", "-r", "-t", "15"])
        load = self.command("load-4k-randread-64s")
        self.assertEqual(load[0], "lunar-load")
        self.assertIn("--sessions=64", load)
        self.assertIn("--iodepth=2", load)

    def test_sizes(self):
        self.assertEqual(cli.parse_size("512m"), 512 << 20)
        self.assertEqual(cli.parse_size("4096"), 4096)


if __name__ == "__main__":
    unittest.main()
