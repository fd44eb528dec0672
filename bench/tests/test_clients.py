"""Parsers of client output and the command lines given to the clients."""

import json
import os
import unittest

from lunarbench import clients

DATA = os.path.join(os.path.dirname(__file__), "data")


def read(name):
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return f.read()


class FioTest(unittest.TestCase):
    def test_real_libiscsi_output(self):
        m = clients.parse_fio_json(read("fio-libiscsi-randread.json"))
        self.assertAlmostEqual(m["iops"], 2083.458271)
        self.assertEqual(m["bw_bytes_per_s"], 8533845)
        self.assertEqual(m["ios"], 4169)
        self.assertEqual(m["errors"], 0)
        self.assertAlmostEqual(m["lat_us"]["p50"], 261.12)
        self.assertAlmostEqual(m["lat_us"]["p99"], 9371.648)
        self.assertAlmostEqual(m["lat_us"]["p99_9"], 17956.864)
        self.assertAlmostEqual(m["lat_us"]["mean"], 955.556679539)

    def test_warnings_before_the_json_are_skipped(self):
        text = "fio: some warning\n" + read("fio-libiscsi-randread.json")
        self.assertEqual(clients.parse_fio_json(text)["ios"], 4169)

    def test_reads_and_writes_add_up_and_the_busier_latency_wins(self):
        report = json.loads(read("fio-libiscsi-randread.json"))
        job = report["jobs"][0]
        job["write"] = dict(job["read"], iops=10.0, bw_bytes=100, total_ios=20,
                            clat_ns={"percentile": {"50.000000": 1_000_000}})
        m = clients.parse_fio_json(json.dumps(report))
        self.assertAlmostEqual(m["iops"], 2093.458271)
        self.assertEqual(m["ios"], 4189)
        self.assertAlmostEqual(m["lat_us"]["p50"], 261.12)

    def test_garbage_is_an_error(self):
        with self.assertRaises(ValueError):
            clients.parse_fio_json("fio: engine libiscsi not loadable\n")

    def test_colons_are_escaped_in_the_filename(self):
        cmd = clients.fio_libiscsi_cmd("fio", "iscsi://127.0.0.1:3260/iqn.x:y/0", "randread",
                                       4096, 8, 15, 2)
        self.assertIn("--filename=iscsi\\://127.0.0.1\\:3260/iqn.x\\:y/0", cmd)
        self.assertIn("--numjobs=8", cmd)
        self.assertIn("--iodepth=1", cmd)
        self.assertIn("--thread", cmd)


class IscsiPerfTest(unittest.TestCase):
    def test_real_output_gives_the_final_average(self):
        m = clients.parse_iscsi_perf(read("iscsi-perf.txt"), 4096)
        self.assertEqual(m["iops"], 4309)
        self.assertEqual(m["bw_bytes_per_s"], 4309 * 4096)
        self.assertIsNone(m["lat_us"])
        self.assertEqual(m["errors"], 0)

    def test_failure_is_counted(self):
        text = "Read10/16 failed with sense key:6 ascq:2900\niops average 5 (0 MB/s)"
        self.assertEqual(clients.parse_iscsi_perf(text, 4096)["errors"], 1)
        with self.assertRaises(ValueError):
            clients.parse_iscsi_perf("Login Failed.", 4096)

    def test_command(self):
        cmd = clients.iscsi_perf_cmd("iscsi://h/t/1", 32, 8, 15)
        self.assertEqual(cmd[:8], ["iscsi-perf", "-m", "32", "-b", "8", "-r", "-t", "15"])
        self.assertEqual(cmd[-1], "iscsi://h/t/1")


class LunarLoadTest(unittest.TestCase):
    REPORT = {
        "tool": "lunar-load", "iops": 1000.0, "bw_bytes_per_s": 4096000.0, "ios": 10000,
        "errors": 1, "mismatches": 2,
        "lat_us": {"mean": 10.0, "p50": 9.0, "p99": 20.0, "p99_9": 30.0, "max": 99.0},
    }

    def test_the_report_line_is_found_among_others(self):
        text = '{"event":"sessions_ready","sessions":4}\n' + json.dumps(self.REPORT) + "\n"
        m = clients.parse_lunar_load(text)
        self.assertEqual(m["iops"], 1000.0)
        self.assertEqual(m["ios"], 10000)
        self.assertEqual(m["errors"], 3)
        self.assertEqual(m["lat_us"], {"mean": 10.0, "p50": 9.0, "p99": 20.0, "p99_9": 30.0})
        with self.assertRaises(ValueError):
            clients.parse_lunar_load('{"event":"sessions_ready"}\n')

    def test_command(self):
        cmd = clients.lunar_load_cmd("lunar-load", "iscsi://h/t/0", "randwrite", 4096, 8, 16,
                                     15, 2, verify=True)
        for flag in ("--json", "--rw=randwrite", "--sessions=8", "--iodepth=16",
                     "--runtime-s=15", "--ramp-s=2", "--verify"):
            self.assertIn(flag, cmd)
        self.assertEqual(cmd[-1], "iscsi://h/t/0")


if __name__ == "__main__":
    unittest.main()
