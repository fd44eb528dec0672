"""SPDK's iSCSI target as a third target: its configuration and command line, the options that
add it, and its goals and table in the report."""

import os
import tempfile
import unittest

from lunarbench import cli, report, rounds, targets
from tests.test_report import document, metrics, row


class SpdkConfigTest(unittest.TestCase):
    def test_config_exports_the_device_on_lun_0_of_one_portal(self):
        config = targets.spdk_config("/dev/loop7", 512, 4321)
        by_name = {s["subsystem"]: s["config"] for s in config["subsystems"]}
        (bdev,) = by_name["bdev"]
        self.assertEqual(bdev["method"], "bdev_aio_create")
        self.assertEqual(bdev["params"],
                         {"name": "bench0", "filename": "/dev/loop7", "block_size": 512})
        methods = {c["method"]: c["params"] for c in by_name["iscsi"]}
        self.assertEqual(methods["iscsi_create_portal_group"]["portals"],
                         [{"host": "127.0.0.1", "port": "4321"}])
        node = methods["iscsi_create_target_node"]
        self.assertEqual(node["name"], targets.SPDK_IQN)
        self.assertEqual(node["luns"], [{"bdev_name": "bench0", "lun_id": 0}])
        self.assertTrue(node["disable_chap"])
        group = methods["iscsi_create_initiator_group"]
        self.assertEqual(node["pg_ig_maps"],
                         [{"pg_tag": methods["iscsi_create_portal_group"]["tag"],
                           "ig_tag": group["tag"]}])
        self.assertEqual(group["netmasks"], ["127.0.0.1/32"])

    def test_command_pins_reactors_to_the_target_cpus(self):
        cmd = targets.spdk_command("/x/iscsi_tgt", [0, 1], "/s/c.json", "/s/spdk.sock")
        self.assertEqual(cmd[:3], ["/x/iscsi_tgt", "-m", "0x3"])
        for flag in ("--no-huge", "-u", "--disable-cpumask-locks"):
            self.assertIn(flag, cmd)
        self.assertEqual(cmd[-4:], ["-r", "/s/spdk.sock", "--json", "/s/c.json"])
        unpinned = targets.spdk_command("/x/iscsi_tgt", [], "/c", "/r")
        self.assertEqual(unpinned[1:3], ["-m", "0x1"])

    def test_library_path_of_a_build_tree(self):
        with tempfile.TemporaryDirectory() as root:
            os.makedirs(os.path.join(root, "build", "bin"))
            binary = os.path.join(root, "build", "bin", "iscsi_tgt")
            self.assertIsNone(targets.spdk_library_path(binary))
            os.makedirs(os.path.join(root, "build", "lib"))
            self.assertEqual(targets.spdk_library_path(binary),
                             os.path.join(root, "build", "lib"))


class SpdkArgsTest(unittest.TestCase):
    def test_spdk_joins_the_targets_when_given(self):
        with tempfile.NamedTemporaryFile() as f:
            os.chmod(f.name, 0o755)
            self.assertEqual(cli.parse_args(["--spdk", f.name]).targets,
                             ["tgt", "lunar", "spdk"])
            self.assertEqual(cli.parse_args(["--spdk", f.name, "--targets", "lunar,spdk"])
                             .targets, ["lunar", "spdk"])
        self.assertEqual(cli.parse_args([]).targets, ["tgt", "lunar"])

    def test_spdk_without_a_binary_is_refused(self):
        for argv in (["--targets", "lunar,spdk"], ["--spdk", "/nonexistent/iscsi_tgt"]):
            with self.assertRaises(SystemExit):
                cli.parse_args(argv)


def spdk_document():
    doc = document()
    doc["meta"]["spdk_version"] = "SPDK v25.09"
    doc["cells"] += [
        row("fio-4k-randread-1j", "spdk", metrics(12000, p50=60, p99=150)),
        row("fio-4k-randread-8j", "spdk", metrics(60000)),
        row("fio-4k-randwrite-8j", "spdk", metrics(55000)),
        row("iscsi-perf-4k-qd32", "spdk", metrics(160000)),
        row("load-4k-randread-8s", "spdk", metrics(180000)),
    ]
    doc["goals"] = report.goals(report.by_cell(doc["cells"]))
    return doc


class SpdkReportTest(unittest.TestCase):
    def test_goals_against_spdk(self):
        results = report.by_cell(spdk_document()["cells"])
        goals = {g["goal"]: g for g in report.goals(results) if "SPDK" in g["goal"]}
        perf = goals["4 KiB random, one session at QD32 (iscsi-perf): lunar IOPS / SPDK IOPS"]
        self.assertAlmostEqual(perf["value"], 150000 / 160000)
        self.assertFalse(perf["met"])
        eight = goals["4 KiB random, 8 sessions (fio 8 jobs, read and write): lunar IOPS / "
                      "SPDK IOPS"]
        self.assertAlmostEqual(eight["value"], 50000 / 55000)  # the write ratio is the smaller
        p50 = goals["4 KiB QD1 randread p50 latency: lunar / SPDK"]
        self.assertAlmostEqual(p50["value"], 50 / 60)
        self.assertTrue(p50["met"])
        # No randwrite 8 x QD16 cell on SPDK: the goal that needs it has no value.
        load8 = goals["4 KiB random, 8 x QD16 (lunar-load, read and write): lunar IOPS / "
                      "SPDK IOPS"]
        self.assertIsNone(load8["value"])
        self.assertIsNone(load8["met"])

    def test_no_spdk_goals_without_spdk(self):
        results = report.by_cell(document()["cells"])
        self.assertFalse([g for g in report.goals(results) if "SPDK" in g["goal"]])

    def test_markdown_has_the_spdk_table(self):
        text = report.markdown(spdk_document())
        self.assertIn("# lunar vs tgt and SPDK", text)
        self.assertIn("SPDK v25.09 (iscsi_tgt, AIO bdev)", text)
        line = next(l for l in text.splitlines()
                    if l.startswith("| iscsi-perf") and "160,000" in l)
        self.assertIn("| 160,000 | 150,000 | 0.94 |", line)
        plain = document()
        plain["goals"] = report.goals(report.by_cell(plain["cells"]))
        self.assertNotIn("SPDK", report.markdown(plain))

    def test_rounds_fold_spdk_goals(self):
        rows = []
        for round_no, spdk_iops in ((1, 100000), (2, 200000), (3, 150000)):
            for r in (row("iscsi-perf-4k-qd32", "lunar", metrics(150000)),
                      row("iscsi-perf-4k-qd32", "spdk", metrics(spdk_iops))):
                rows.append({**r, "round": round_no})
        goal = next(g for g in rounds.goals(rows)
                    if g["goal"].startswith("4 KiB random, one session at QD32 (iscsi-perf): "
                                            "lunar IOPS / SPDK"))
        self.assertEqual(goal["round_values"], [1.5, 0.75, 1.0])
        self.assertEqual(goal["value"], 1.0)
        self.assertTrue(goal["met"])


if __name__ == "__main__":
    unittest.main()
