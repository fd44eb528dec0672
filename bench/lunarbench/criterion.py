"""Reads Criterion's results (target/criterion/**/new/{benchmark,estimates}.json) and prints
them as markdown: one table of every benchmark, and the mapping lookups as layouts against
volume sizes, so it shows at a glance whether lookup time grows with the volume.

    python3 -m lunarbench.criterion target/criterion
"""

import json
import os
import sys


def load(root):
    """[(full_id, group, function, value, mean_ns, median_ns)] sorted by id."""
    out = []
    for dirpath, _, filenames in os.walk(root):
        if os.path.basename(dirpath) != "new" or "estimates.json" not in filenames:
            continue
        try:
            with open(os.path.join(dirpath, "benchmark.json"), encoding="utf-8") as f:
                bench = json.load(f)
            with open(os.path.join(dirpath, "estimates.json"), encoding="utf-8") as f:
                est = json.load(f)
        except (OSError, ValueError):
            continue
        per = 1
        throughput = bench.get("throughput") or {}
        if "Elements" in throughput and throughput["Elements"]:
            per = throughput["Elements"]
        out.append((bench["full_id"], bench.get("group_id"), bench.get("function_id"),
                    bench.get("value_str"), est["mean"]["point_estimate"] / per,
                    est["median"]["point_estimate"] / per))
    return sorted(out)


# Criterion groups shown as a layout x volume size table.
LOOKUP_GROUPS = [
    ("plan_4KiB", "Mapping lookup of a 4 KiB request, plan (direct maps)"),
    ("plan_io_4KiB", "Planning a 4 KiB request, plan_io (what the reactors call)"),
]


def fmt_ns(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.1f} ns"


def tables(rows):
    lines = ["| benchmark | mean per element | median per element |", "|---|--:|--:|"]
    lines += [f"| {r[0]} | {fmt_ns(r[4])} | {fmt_ns(r[5])} |" for r in rows]
    for group, title in LOOKUP_GROUPS:
        lookups = [r for r in rows if r[1] == group and r[3]]
        if not lookups:
            continue
        sizes = sorted({r[3] for r in lookups}, key=size_key)
        layouts = sorted({r[2] for r in lookups})
        by = {(r[2], r[3]): r[5] for r in lookups}
        lines += ["", f"{title} (median ns) by volume size:", "",
                  "| layout | " + " | ".join(sizes) + " |",
                  "|---|" + "--:|" * len(sizes)]
        for layout in layouts:
            cells = [f"{by[(layout, s)]:.1f}" if (layout, s) in by else "-" for s in sizes]
            lines.append(f"| {layout} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def size_key(label):
    units = {"GiB": 1 << 30, "TiB": 1 << 40}
    for unit, scale in units.items():
        if label.endswith(unit) and label[: -len(unit)].isdigit():
            return int(label[: -len(unit)]) * scale
    return 0


def main(argv):
    root = argv[1] if len(argv) > 1 else "target/criterion"
    rows = load(root)
    if not rows:
        print(f"no Criterion results under {root}", file=sys.stderr)
        return 1
    print(tables(rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
