"""The clients a run drives, as command lines, and the parsers of what they print. Every
parser returns the same metrics shape:

    {"iops": float, "bw_bytes_per_s": float, "ios": int or None, "errors": int,
     "lat_us": {"mean", "p50", "p99", "p99_9"} or None}
"""

import json
import re

FIO_PERCENTILES = "50:99:99.9"
FIO_PERCENTILE_KEYS = {"p50": "50.000000", "p99": "99.000000", "p99_9": "99.900000"}


def fio_filename(url):
    """An iscsi:// URL as fio's filename option wants it: every colon escaped."""
    return url.replace(":", "\\:")


def _fio_common(runtime_s, ramp_s):
    return [
        "--thread",
        "--time_based",
        f"--runtime={runtime_s}",
        f"--ramp_time={ramp_s}",
        "--group_reporting",
        f"--percentile_list={FIO_PERCENTILES}",
        "--output-format=json",
    ]


def fio_libiscsi_cmd(fio, url, rw, bs, numjobs, runtime_s, ramp_s):
    """fio with the libiscsi engine: one session per job, one command in flight per job."""
    return [
        fio,
        "--name=lunar-bench",
        "--ioengine=libiscsi",
        f"--filename={fio_filename(url)}",
        f"--rw={rw}",
        f"--bs={bs}",
        f"--numjobs={numjobs}",
        "--iodepth=1",
        *_fio_common(runtime_s, ramp_s),
    ]


def fio_raw_cmd(fio, device, rw, bs, iodepth, runtime_s, ramp_s):
    """fio with io_uring straight on the backing device: the ceiling."""
    return [
        fio,
        "--name=raw",
        "--ioengine=io_uring",
        f"--filename={device}",
        "--direct=1",
        "--fixedbufs=1",
        "--registerfiles=1",
        f"--rw={rw}",
        f"--bs={bs}",
        f"--iodepth={iodepth}",
        "--numjobs=1",
        *_fio_common(runtime_s, ramp_s),
    ]


def parse_fio_json(text):
    """Metrics from fio's JSON output (reads and writes added up). fio may print warnings
    before the JSON object: everything before the first line starting with '{' is skipped."""
    start = next(
        (m.start() for m in re.finditer(r"^\{", text, re.MULTILINE)), None
    )
    if start is None:
        raise ValueError("no JSON object in fio's output")
    report = json.loads(text[start:])
    job = report["jobs"][0]
    iops = bw = 0.0
    ios = 0
    lat = None
    for direction in ("read", "write"):
        d = job.get(direction) or {}
        if not d.get("total_ios"):
            continue
        iops += float(d["iops"])
        bw += float(d["bw_bytes"])
        ios += int(d["total_ios"])
        clat = d.get("clat_ns") or {}
        percentiles = clat.get("percentile") or {}
        # With both directions active the busier one's latency is reported.
        if lat is None or float(d["iops"]) > lat["_iops"]:
            lat = {
                "_iops": float(d["iops"]),
                "mean": float(d.get("lat_ns", {}).get("mean", clat.get("mean", 0.0))) / 1000.0,
                **{
                    key: float(percentiles[fio_key]) / 1000.0
                    for key, fio_key in FIO_PERCENTILE_KEYS.items()
                    if fio_key in percentiles
                },
            }
    if lat is not None:
        lat.pop("_iops")
    return {
        "iops": iops,
        "bw_bytes_per_s": bw,
        "ios": ios,
        "errors": int(job.get("error", 0)),
        "lat_us": lat,
    }


def iscsi_perf_cmd(url, depth, blocks, runtime_s):
    """libiscsi's iscsi-perf: random reads at a queue depth from one session."""
    return [
        "iscsi-perf",
        "-m",
        str(depth),
        "-b",
        str(blocks),
        "-r",
        "-t",
        str(runtime_s),
        "-i",
        "iqn.2026-11.dev.lunar:iscsi-perf",
        url,
    ]


def parse_iscsi_perf(text, io_bytes):
    """Metrics from iscsi-perf's output: its last "iops average N (M MB/s)". It measures no
    latency."""
    averages = re.findall(r"iops average (\d+)", text)
    if not averages:
        raise ValueError("iscsi-perf printed no average")
    iops = float(averages[-1])
    return {
        "iops": iops,
        "bw_bytes_per_s": iops * io_bytes,
        "ios": None,
        "errors": 1 if "failed" in text else 0,
        "lat_us": None,
    }


def lunar_load_cmd(binary, url, rw, bs, sessions, iodepth, runtime_s, ramp_s, threads=1,
                   verify=False, idle=False):
    """lunar's own load generator."""
    cmd = [
        binary,
        "--json",
        f"--rw={rw}",
        f"--bs={bs}",
        f"--sessions={sessions}",
        f"--iodepth={iodepth}",
        f"--threads={threads}",
        f"--runtime-s={runtime_s}",
        f"--ramp-s={ramp_s}",
    ]
    if verify:
        cmd.append("--verify")
    if idle:
        cmd.append("--idle")
    return [*cmd, url]


def parse_lunar_load(text):
    """Metrics from lunar-load's JSON report (the last JSON line it printed)."""
    lines = [line for line in text.splitlines() if line.startswith("{")]
    reports = [json.loads(line) for line in lines]
    reports = [r for r in reports if r.get("tool") == "lunar-load"]
    if not reports:
        raise ValueError("lunar-load printed no report")
    r = reports[-1]
    lat = r["lat_us"]
    return {
        "iops": float(r["iops"]),
        "bw_bytes_per_s": float(r["bw_bytes_per_s"]),
        "ios": int(r["ios"]),
        "errors": int(r["errors"]) + int(r["mismatches"]),
        "lat_us": {key: float(lat[key]) for key in ("mean", "p50", "p99", "p99_9")},
    }
