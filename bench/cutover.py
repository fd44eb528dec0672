#!/usr/bin/env python3
"""The pause online changes cause: lunar-load (randrw, verifying every read) against a lunard
volume, first undisturbed, then while the volume is migrated to another device, then while a
mirror leg is added and resynchronised. Prints one markdown table of IOPS and command latency
(p50, p99, p99.9, max) per case, and how long each task took.

    bench/cutover.py [--size 256M] [--runtime 10] [--sessions 4] [--iodepth 8]

Builds lunard and lunar-load in release mode if --lunard / --lunar-load are not given. The
backing files live in /dev/shm so the devices are not the bottleneck.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import json  # noqa: E402

from lunarbench.cli import parse_size  # noqa: E402
from lunarbench.clients import lunar_load_cmd  # noqa: E402
from lunarbench.targets import Lunar  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TASK_TIMEOUT_S = 600


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=parse_size, default=parse_size("256M"))
    p.add_argument("--runtime", type=float, default=10.0, help="seconds per case")
    p.add_argument("--sessions", type=int, default=4)
    p.add_argument("--iodepth", type=int, default=8)
    p.add_argument("--cores", type=int, default=1)
    p.add_argument("--poll-mode", default="adaptive")
    p.add_argument("--lunard")
    p.add_argument("--lunar-load")
    return p.parse_args(argv)


def build_tools(args):
    """Paths of lunard and lunar-load, building (release) what was not given."""
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    lunard = args.lunard
    if not lunard:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "lunar-daemon",
                        "--bin", "lunard"], check=True, cwd=REPO)
        lunard = os.path.join(target_dir, "release", "lunard")
    load = args.lunar_load
    if not load:
        subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path",
                        os.path.join(REPO, "bench", "Cargo.toml")], check=True, cwd=REPO)
        load = os.path.join(REPO, "bench", "target", "release", "lunar-load")
    return lunard, load


def parse_report(text):
    """lunar-load's JSON report: the last JSON line it printed."""
    reports = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    reports = [r for r in reports if r.get("tool") == "lunar-load"]
    if not reports:
        raise RuntimeError(f"lunar-load printed no report: {text}")
    return reports[-1]


def sparse_file(directory, name, size):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def run_load(load, url, args, out):
    cmd = lunar_load_cmd(load, url, "randrw", "4k", sessions=args.sessions,
                         iodepth=args.iodepth, runtime_s=args.runtime, ramp_s=1.0, verify=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.runtime + 120)
    out["result"] = parse_report(proc.stdout + proc.stderr)
    out["stderr"] = proc.stderr


def wait_task(target, task_id):
    started = time.monotonic()
    while time.monotonic() - started < TASK_TIMEOUT_S:
        task = target.rpc("task_get", {"id": task_id})
        if task["state"] != "running":
            if task["state"] != "done":
                raise RuntimeError(f"task {task_id} ended {task['state']}: {task}")
            return time.monotonic() - started
        time.sleep(0.01)
    raise RuntimeError(f"task {task_id} did not end")


def case(target, load, url, args, change=None):
    """Run the load; `change` (started 2 s in) returns a task id to wait for."""
    out = {}
    worker = threading.Thread(target=run_load, args=(load, url, args, out))
    worker.start()
    task_s = None
    if change is not None:
        time.sleep(2.0)
        task_s = wait_task(target, change())
    worker.join()
    result = out["result"]
    errors = int(result["errors"]) + int(result["mismatches"])
    if errors:
        raise RuntimeError(f"lunar-load saw {errors} errors: {out.get('stderr')}")
    return result, task_s


def main(argv=None):
    args = parse_args(argv or sys.argv[1:])
    lunard, load = build_tools(args)
    shm = tempfile.mkdtemp(prefix="lunar-cutover-", dir="/dev/shm")
    a = sparse_file(shm, "a.img", args.size)
    b = sparse_file(shm, "b.img", args.size)
    log_path = os.path.join(shm, "lunard.log")
    target = Lunar(lunard, a, args.size, 512, args.cores, args.poll_mode, log_path).start()
    rows = []
    try:
        target.rpc("device_add", {"name": "bench1", "path": b})
        url = target.url
        rows.append(("undisturbed", *case(target, load, url, args)))
        rows.append(("volume_migrate to another device", *case(
            target, load, url, args,
            lambda: target.rpc("volume_migrate", {
                "name": "bench0", "layout": {"linear": {"device": "bench1"}}})["id"])))
        rows.append(("mirror_leg_add (full resync)", *case(
            target, load, url, args,
            lambda: target.rpc("mirror_leg_add", {
                "volume": "bench0", "leg": {"linear": {"device": "bench0"}}})["id"])))
    finally:
        target.stop()
        subprocess.run(["rm", "-rf", shm], check=False)
    print(f"lunar-load randrw 4 KiB, {args.sessions} sessions x QD{args.iodepth}, --verify, "
          f"{args.runtime:g} s per case, {args.size >> 20} MiB volume, lunard --cores "
          f"{args.cores} --poll-mode {args.poll_mode}\n")
    print("| case | IOPS | p50 us | p99 us | p99.9 us | max us | task s |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for name, r, task_s in rows:
        lat = r["lat_us"]
        task = "-" if task_s is None else f"{task_s:.2f}"
        print(f"| {name} | {r['iops']:.0f} | {lat['p50']:.0f} | {lat['p99']:.0f} | "
              f"{lat['p99_9']:.0f} | {lat['max']:.0f} | {task} |")


if __name__ == "__main__":
    main()
