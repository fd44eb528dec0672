"""The markdown tables made from Criterion's result files."""

import json
import os
import tempfile
import unittest

from lunarbench import criterion


def write(root, group, function, value, mean_ns, elements=1):
    path = os.path.join(root, group, function, value or "", "new")
    os.makedirs(path)
    full_id = "/".join(p for p in (group, function, value) if p)
    with open(os.path.join(path, "benchmark.json"), "w", encoding="utf-8") as f:
        json.dump({"full_id": full_id, "group_id": group, "function_id": function,
                   "value_str": value, "throughput": {"Elements": elements}}, f)
    with open(os.path.join(path, "estimates.json"), "w", encoding="utf-8") as f:
        json.dump({"mean": {"point_estimate": mean_ns},
                   "median": {"point_estimate": mean_ns}}, f)


class CriterionTest(unittest.TestCase):
    def test_tables(self):
        with tempfile.TemporaryDirectory() as root:
            write(root, "frame", "burst_32_commands", None, 3200.0, elements=32)
            write(root, "plan_4KiB", "linear", "64TiB", 21.0)
            write(root, "plan_4KiB", "linear", "1GiB", 20.0)
            write(root, "plan_4KiB", "stripe8", "1TiB", 30.0)
            rows = criterion.load(root)
            self.assertEqual([r[0] for r in rows], ["frame/burst_32_commands",
                                                    "plan_4KiB/linear/1GiB",
                                                    "plan_4KiB/linear/64TiB",
                                                    "plan_4KiB/stripe8/1TiB"])
            text = criterion.tables(rows)
            self.assertIn("| frame/burst_32_commands | 100.0 ns | 100.0 ns |", text)
            self.assertIn("| layout | 1GiB | 1TiB | 64TiB |", text)
            self.assertIn("| linear | 20.0 | - | 21.0 |", text)
            self.assertIn("| stripe8 | - | 30.0 | - |", text)

    def test_no_results(self):
        with tempfile.TemporaryDirectory() as root:
            self.assertEqual(criterion.main(["x", root]), 1)


if __name__ == "__main__":
    unittest.main()
