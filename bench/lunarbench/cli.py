"""The command line and the run: build or find the tools, make the backing device, start tgt
and lunard on it, run the raw ceiling, then every cell against both targets (interleaved, the
idle one paused), measure idle sessions, and write the results."""

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time

from . import clients, matrix, profile, report, rounds
from .backing import Backing
from .procstat import WindowSampler, rss_bytes
from .targets import Lunar, Spdk, Tgt, taskset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENT_GRACE_S = 60
# The steady part of a client run starts this long after its ramp ends and ends this long
# before its runtime does.
WINDOW_MARGIN_START_S = 1.0
WINDOW_MARGIN_END_S = 0.5
IDLE_HOLD_S = 4.0
IDLE_SETTLE_S = 1.0


def parse_size(text):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    text = text.strip().lower()
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="bench/run.sh",
        description="lunar against tgt on the same backing device: fio (libiscsi), "
        "iscsi-perf, lunar-load, and raw fio io_uring as the ceiling.",
    )
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 s per cell, a 512 MiB device, 16 idle sessions")
    p.add_argument("--runtime-s", type=float, help="seconds measured per cell [15; quick: 2]")
    p.add_argument("--ramp-s", type=float, help="seconds of load before measuring [2; quick: 1]")
    p.add_argument("--size", type=parse_size,
                   help="bytes of backing device to use (suffixes k m g) [2g; quick: 512m]")
    p.add_argument("--device", help="a file or block device to use instead of a loop device on "
                   "tmpfs; its first --size bytes are OVERWRITTEN")
    p.add_argument("--loop-buffered", action="store_true",
                   help="run the tmpfs loop device without direct I/O (through its page cache)")
    p.add_argument("--no-fill", action="store_true",
                   help="do not fill a --device with random data first")
    p.add_argument("--cores", type=int, default=1, help="lunard reactors [1]")
    p.add_argument("--poll-mode", choices=("busy", "adaptive"), default="busy",
                   help="lunard's --poll-mode [busy]")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin targets to CPUs 0..cores-1 and clients to the others")
    p.add_argument("--targets",
                   help="targets to run: tgt, lunar, spdk [tgt,lunar; with --spdk, "
                   "tgt,lunar,spdk]")
    p.add_argument("--spdk", metavar="ISCSI_TGT",
                   help="SPDK's iscsi_tgt binary, built beforehand: runs SPDK as a third "
                   "target on the same device (see bench/README.md)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run the whole matrix N times and report medians (see "
                   "lunarbench/rounds.py) [1]")
    p.add_argument("--cells", default="", help="comma-separated cell ids to run [all]")
    p.add_argument("--list-cells", action="store_true", help="print the cells and exit")
    p.add_argument("--report", metavar="DIR",
                   help="only rebuild results.md and chart.png from DIR/results.json")
    p.add_argument("--idle-sessions", type=int, help="idle sessions to log in [64; quick: 16]")
    p.add_argument("--out", help="results directory [bench/results/<UTC time>]")
    p.add_argument("--fio", help="fio with the libiscsi engine [scripts/fio-libiscsi.sh]")
    p.add_argument("--lunard", help="lunard binary [cargo build --release]")
    p.add_argument("--lunar-load", help="lunar-load binary [cargo build --release]")
    p.add_argument("--profile", action="store_true",
                   help="record each target with perf over each cell's window and keep its "
                   "top symbols in profiles/ of the results directory (needs perf)")
    args = p.parse_args(argv)
    args.runtime_s = args.runtime_s or (2.0 if args.quick else 15.0)
    args.ramp_s = args.ramp_s if args.ramp_s is not None else (1.0 if args.quick else 2.0)
    args.size = args.size or ((512 << 20) if args.quick else (2 << 30))
    args.idle_sessions = args.idle_sessions or (16 if args.quick else 64)
    if args.targets is None:
        args.targets = "tgt,lunar,spdk" if args.spdk else "tgt,lunar"
    args.targets = [t for t in args.targets.split(",") if t]
    args.cells = [c for c in args.cells.split(",") if c]
    if set(args.targets) - {"tgt", "lunar", "spdk"}:
        p.error("--targets takes tgt, lunar and spdk")
    if "spdk" in args.targets and not args.spdk:
        p.error("the spdk target needs --spdk PATH (SPDK's iscsi_tgt)")
    if args.spdk and not (os.path.isfile(args.spdk) and os.access(args.spdk, os.X_OK)):
        p.error(f"--spdk {args.spdk}: not an executable file")
    if args.runtime_s < 2:
        p.error("--runtime-s must be at least 2")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def build_tools(args):
    """Paths of fio, lunard and lunar-load, building what was not given."""
    fio = args.fio
    if not fio:
        fio = subprocess.run([os.path.join(REPO, "scripts", "fio-libiscsi.sh")], check=True,
                             stdout=subprocess.PIPE, text=True).stdout.strip()
    # With CARGO_TARGET_DIR set, both workspaces build into it.
    target_dir = os.environ.get("CARGO_TARGET_DIR")
    lunard = args.lunard
    if not lunard and "lunar" in args.targets:
        log("building lunard (release)")
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "lunar-daemon",
                        "--bin", "lunard"], check=True, cwd=REPO)
        lunard = os.path.join(target_dir or os.path.join(REPO, "target"), "release", "lunard")
    load = args.lunar_load
    if not load:
        log("building lunar-load (release)")
        subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path",
                        os.path.join(REPO, "bench", "Cargo.toml")], check=True, cwd=REPO)
        load = os.path.join(target_dir or os.path.join(REPO, "bench", "target"), "release",
                            "lunar-load")
    for tool in ("tgtd", "tgtadm", "iscsi-perf", "iscsi-inq", "losetup", "taskset", "dd"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing (bench/run.sh installs it)")
    return fio, lunard, load


def command_line(cell, target_url, device, fio, load, args):
    """The client command of a cell against a target URL (or the device for raw cells)."""
    rt, ramp = args.runtime_s, args.ramp_s
    if cell.kind == "fio":
        return clients.fio_libiscsi_cmd(fio, target_url, cell.rw, cell.bs, cell.jobs, rt, ramp)
    if cell.kind == "raw":
        return clients.fio_raw_cmd(fio, device, cell.rw, cell.bs, cell.iodepth, rt, ramp)
    if cell.kind == "iscsi-perf":
        # -b is in logical blocks; both targets serve 512-byte blocks.
        return clients.iscsi_perf_cmd(target_url, cell.iodepth, cell.bs // 512, int(rt))
    if cell.kind == "load":
        return clients.lunar_load_cmd(load, target_url, cell.rw, cell.bs, cell.jobs,
                                      cell.iodepth, rt, ramp)
    raise ValueError(f"unknown cell kind {cell.kind}")


def parse_output(cell, text):
    if cell.kind in ("fio", "raw"):
        return clients.parse_fio_json(text)
    if cell.kind == "iscsi-perf":
        return clients.parse_iscsi_perf(text, cell.bs)
    return clients.parse_lunar_load(text)


def run_order(cells, targets, rounds):
    """(round, cell, target) in the order they run: round after round, the raw cells (target
    None) first, then every target cell against each target one right after the other; which
    target goes first flips from cell to cell and from round to round."""
    runs = []
    for round_no in range(1, rounds + 1):
        runs += [(round_no, c, None) for c in cells if not c.on_targets]
        for i, cell in enumerate(c for c in cells if c.on_targets):
            first = targets if (i + round_no) % 2 == 1 else list(reversed(targets))
            runs += [(round_no, cell, t) for t in first]
    return runs


def run_cell(cell, target, cmd, client_cpus, args, round_no=1):
    """Runs one client command; returns the row of results.json for it."""
    has_ramp = cell.kind != "iscsi-perf"
    ramp = args.ramp_s if has_ramp else 0.0
    row = {"cell": cell.id, "title": cell.title, "target": target.name if target else "raw",
           "command": cmd, "metrics": None, "error": None, "round": round_no}
    start = time.monotonic()
    proc = subprocess.Popen([*taskset(client_cpus), *cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace")
    sampler = WindowSampler(
        {"target": target.pid if target else None, "client": proc.pid},
        start + ramp + WINDOW_MARGIN_START_S,
        start + ramp + args.runtime_s - WINDOW_MARGIN_END_S,
        cpu_sets={"client_cpus": client_cpus},
        probes={"target_reactors": getattr(target, "reactor_time_us", None)},
    )
    profiler = None
    if args.profile and target is not None:
        os.makedirs(os.path.join(args.out, "profiles"), exist_ok=True)
        suffix = f"-round{round_no}" if args.rounds > 1 else ""
        profiler = profile.WindowProfiler(
            target.pid,
            start + ramp + WINDOW_MARGIN_START_S,
            start + ramp + args.runtime_s - WINDOW_MARGIN_END_S,
            os.path.join(args.out, "profiles", f"{cell.id}-{target.name}{suffix}.txt"),
        )
    try:
        out, err = proc.communicate(timeout=ramp + args.runtime_s + CLIENT_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        row["error"] = "client timed out"
    cpu = sampler.result()
    row["elapsed_s"] = round(time.monotonic() - start, 2)
    try:
        row["metrics"] = parse_output(cell, out)
    except (ValueError, KeyError, IndexError) as e:
        row["error"] = row["error"] or f"{e}; exit {proc.returncode}; {err.strip()[-400:]}"
    if row["metrics"] and proc.returncode != 0 and not row["error"]:
        row["error"] = f"exit {proc.returncode}: {err.strip()[-400:]}"
    row["client_cpu_cores"] = cpu.get("client")
    row["client_cpus_busy"] = cpu.get("client_cpus")
    row["target_cpu_cores"] = cpu.get("target")
    row["target_reactors_busy"] = cpu.get("target_reactors")
    iops = (row["metrics"] or {}).get("iops")
    if profiler is not None:
        path = profiler.finish(iops)
        row["profile"] = os.path.relpath(path, args.out) if path else None
        row["target_instructions_per_io"] = profiler.instructions_per_io(iops) or None
        if profiler.error:
            log(f"{cell.id} on {target.name}: {profiler.error}")
    if cpu.get("target") is not None and iops:
        row["target_cpu_us_per_io"] = cpu["target"] / iops * 1e6
    if cpu.get("target_reactors_busy_cores") is not None and iops:
        row["target_busy_us_per_io"] = cpu["target_reactors_busy_cores"] / iops * 1e6
    return row


def idle_sessions(target, load, sessions, client_cpus):
    """Logs `sessions` idle sessions in to a target and reports its VmRSS growth."""
    target.resume()
    try:
        time.sleep(0.2)
        before = rss_bytes(target.pid)
        cmd = clients.lunar_load_cmd(load, target.url, "randread", 4096, sessions, 1,
                                     IDLE_HOLD_S, 0, idle=True)
        proc = subprocess.Popen([*taskset(client_cpus), *cmd], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace")
        after = None
        for line in proc.stdout:
            if "sessions_ready" in line:
                time.sleep(IDLE_SETTLE_S)
                after = rss_bytes(target.pid)
                break
        _, err = proc.communicate(timeout=IDLE_HOLD_S + CLIENT_GRACE_S)
        if after is None or before is None:
            return {"sessions": sessions, "error": f"no sessions_ready: {err.strip()[-300:]}"}
        return {"sessions": sessions, "rss_before_bytes": before, "rss_after_bytes": after,
                "per_session_bytes": (after - before) / sessions}
    finally:
        target.pause()


def summary(row):
    m = row.get("metrics")
    if row.get("error"):
        return f"ERROR {row['error']}"
    text = f"{m['iops']:,.0f} IOPS {m['bw_bytes_per_s'] / 2**20:,.1f} MiB/s"
    if m.get("lat_us"):
        text += f" p50 {m['lat_us'].get('p50', 0):.0f} µs p99 {m['lat_us'].get('p99', 0):.0f} µs"
    if row.get("target_cpu_us_per_io"):
        text += f" target {row['target_cpu_us_per_io']:.1f} µs CPU/IO"
    return text


def tool_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def write_reports(out_dir, document):
    """results.md and chart.png from a results document; returns the markdown."""
    text = report.markdown(document)
    with open(os.path.join(out_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write(text)
    charted = report.chart(os.path.join(out_dir, "chart.png"), document)
    log(f"results in {out_dir} (results.json, results.md"
        + (", chart.png)" if charted else "; no chart: matplotlib is not installed)"))
    return text


def rebuild_report(out_dir):
    with open(os.path.join(out_dir, "results.json"), encoding="utf-8") as f:
        document = json.load(f)
    if document.get("round_cells"):
        document["goals"] = rounds.goals(document["round_cells"])
    else:
        document["goals"] = report.goals(report.by_cell(document["cells"]))
    print(write_reports(out_dir, document))
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    all_cells = [*matrix.RAW_CELLS, *matrix.TARGET_CELLS]
    if args.list_cells:
        for cell in all_cells:
            print(f"{cell.id:24} {cell.title}")
        return 0
    if args.report:
        return rebuild_report(args.report)
    cells = matrix.select(all_cells, args.cells)
    # SIGTERM unwinds like Ctrl-C, so the targets stop and the loop device is detached.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.geteuid() != 0:
        raise SystemExit("bench: needs root (loop devices, tgtd)")
    fio, lunard, load = build_tools(args)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = args.out or os.path.join(REPO, "bench", "results",
                                       stamp + ("-quick" if args.quick else ""))
    os.makedirs(out_dir, exist_ok=True)
    args.out = out_dir
    if args.profile and not profile.perf_available():
        raise SystemExit("bench: --profile needs perf (Debian: apt install linux-perf)")
    cpus = os.cpu_count() or 1
    target_cpus = [] if args.no_pin else list(range(min(args.cores, cpus)))
    client_cpus = [] if args.no_pin else list(range(len(target_cpus), cpus))
    git = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    rows, idle = [], {}
    started = time.monotonic()
    with Backing(args.size, args.device, not args.no_fill,
                 loop_direct_io=not args.loop_buffered) as backing:
        log(f"backing: {backing.kind} {backing.path}, {backing.size_bytes >> 20} MiB")
        targets = []
        try:
            if "tgt" in args.targets:
                targets.append(Tgt(backing.path, os.path.join(out_dir, "tgtd.log"),
                                   target_cpus).start())
            if "lunar" in args.targets:
                targets.append(Lunar(lunard, backing.path, backing.size_bytes, 512,
                                     args.cores, args.poll_mode,
                                     os.path.join(out_dir, "lunard.log"),
                                     target_cpus).start())
            if "spdk" in args.targets:
                targets.append(Spdk(args.spdk, backing.path, 512,
                                    os.path.join(out_dir, "spdk.log"), target_cpus).start())
            for target in targets:
                target.pause()
            # Idle sessions first, while the targets' heaps are fresh: memory freed by earlier
            # cells would otherwise be reused and hide what a session costs.
            for target in targets:
                idle[target.name] = idle_sessions(target, load, args.idle_sessions,
                                                  client_cpus)
                log(f"idle sessions on {target.name}: {idle[target.name]}")
            meta = {
                "date": stamp, "command": shlex.join(["bench/run.sh", *sys.argv[1:]]),
                "git_commit": git, "cpus": cpus, "kernel": platform.release(),
                "backing": f"{backing.kind} ({backing.size_bytes >> 20} MiB)",
                "lunard_version": next((t.version() for t in targets if t.name == "lunar"),
                                       "-"),
                "spdk_version": next((t.version() for t in targets if t.name == "spdk"), None),
                "tgt_version": f"tgt {tool_version(['tgtd', '--version'])}",
                "fio_version": tool_version([fio, "--version"]),
                "cores": args.cores, "poll_mode": args.poll_mode,
                "target_cpus": target_cpus, "client_cpus": client_cpus,
                "runtime_s": args.runtime_s, "ramp_s": args.ramp_s, "rounds": args.rounds,
            }
            runs = run_order(cells, targets, args.rounds)
            for n, (round_no, cell, target) in enumerate(runs, 1):
                if target is not None and not target.alive():
                    rows.append({"cell": cell.id, "title": cell.title, "target": target.name,
                                 "metrics": None, "error": "target is not running",
                                 "round": round_no})
                    continue
                cmd = command_line(cell, target.url if target else None, backing.path, fio,
                                   load, args)
                if target:
                    target.resume()
                try:
                    row = run_cell(cell, target, cmd, client_cpus, args, round_no)
                finally:
                    if target:
                        target.pause()
                rows.append(row)
                log(f"[{n}/{len(runs)}] {cell.id} on {row['target']}"
                    + (f" (round {round_no})" if args.rounds > 1 else "")
                    + f": {summary(row)}")
        finally:
            for target in targets:
                target.stop()
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    document = {
        "meta": meta,
        "cell_order": [{"id": c.id, "title": c.title, "bs": c.bs} for c in cells
                       if c.on_targets],
        "idle_sessions": idle,
    }
    if args.rounds > 1:
        document.update(cells=rounds.fold(rows), round_cells=rows, goals=rounds.goals(rows))
    else:
        document.update(cells=rows, goals=report.goals(report.by_cell(rows)))
    report.write_json(os.path.join(out_dir, "results.json"), document)
    text = write_reports(out_dir, document)
    latest = os.path.join(os.path.dirname(out_dir), "latest")
    if os.path.islink(latest) or not os.path.exists(latest):
        try:
            if os.path.islink(latest):
                os.unlink(latest)
            os.symlink(os.path.basename(out_dir), latest)
        except OSError:
            pass
    print(text)
    failed = [r for r in rows if r.get("error")]
    return 1 if failed else 0
