"""What a run leaves behind: results.json (every cell, with the machine and the versions),
results.md (a table of tgt against lunar, one of SPDK against lunar when SPDK ran, the ratios
and the goals of issue 5), chart.png."""

import json
import statistics

MIB = 1024 * 1024

def by_cell(rows):
    """Rows of results.json keyed by (cell id, target name), as `goals` takes them."""
    return {(r["cell"], r["target"]): r for r in rows}


def ran(results, target):
    """Whether rows of `target` are among the results (keyed as `by_cell` keys them)."""
    return any(name == target for _, name in results)


def _metric(results, cell, target, key):
    row = results.get((cell, target))
    if not row or not row.get("metrics"):
        return None
    return row["metrics"].get(key)


def _ratio(results, cell, key="iops", peer="tgt"):
    """lunar's figure over the peer's in one cell (None without both)."""
    theirs = _metric(results, cell, peer, key)
    lunar = _metric(results, cell, "lunar", key)
    if not theirs or lunar is None:
        return None
    return lunar / theirs


def _lat(results, cell, target, key):
    lat = _metric(results, cell, target, "lat_us")
    return lat.get(key) if lat else None


def _cpu(results, cell, target):
    row = results.get((cell, target))
    return row.get("target_cpu_us_per_io") if row else None


def _min_ratio(results, cells, key="iops", peer="tgt"):
    ratios = [_ratio(results, c, key, peer) for c in cells]
    return None if any(r is None for r in ratios) else min(ratios)


def median(values):
    """The median of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def is_met(value, threshold, at_least):
    """Whether a goal's value is on the right side of its threshold (None without a value)."""
    return None if value is None else (value >= threshold if at_least else value <= threshold)


def _busiest(results, cells, key):
    """The highest share `key` took in lunar's runs of these cells (None without any)."""
    shares = [(results.get((c, "lunar")) or {}).get(key) for c in cells]
    shares = [s for s in shares if s is not None]
    return max(shares) if shares else None


def goals(results):
    """The goals of issue 5, each with the measured value and whether it is met (None when a
    cell it needs is missing). Goals on lunar's throughput and CPU also carry how busy the
    client CPUs (`client_cpus_busy`) and lunar's reactors (`lunar_reactors_busy`, the share of
    their time in turns that did work) were in lunar's runs of their cells, the busiest run of
    each: client CPUs near 100% with reactors well below it, the client, not lunar, set the
    figure."""
    out = []

    def add(text, value, threshold, at_least, cells=()):
        out.append({"goal": text, "value": value, "threshold": threshold,
                    "at_least": at_least, "met": is_met(value, threshold, at_least),
                    "client_cpus_busy": _busiest(results, cells, "client_cpus_busy"),
                    "lunar_reactors_busy": _busiest(results, cells, "target_reactors_busy")})

    fio8 = ["fio-4k-randread-8j", "fio-4k-randwrite-8j"]
    add("4 KiB random, 8 sessions (fio 8 jobs, read and write): lunar IOPS / tgt IOPS",
        _min_ratio(results, fio8), 3.0, True, fio8)
    add("the same 8 x QD1 load from lunar-load (client not the limit): lunar IOPS / tgt IOPS",
        _ratio(results, "load-4k-randread-8s-qd1"), 3.0, True, ["load-4k-randread-8s-qd1"])
    add("4 KiB random, one session at QD32 (iscsi-perf): lunar IOPS / tgt IOPS",
        _ratio(results, "iscsi-perf-4k-qd32"), 5.0, True, ["iscsi-perf-4k-qd32"])
    add("the same 1 x QD32 load from lunar-load (client not the limit): lunar IOPS / tgt IOPS",
        _ratio(results, "load-4k-randread-1s-qd32"), 5.0, True, ["load-4k-randread-1s-qd32"])
    tgt_cpu = _cpu(results, "fio-4k-randread-8j", "tgt")
    lunar_cpu = _cpu(results, "fio-4k-randread-8j", "lunar")
    add("target CPU per 4 KiB I/O (fio randread 8 jobs): tgt / lunar",
        tgt_cpu / lunar_cpu if tgt_cpu and lunar_cpu else None, 8.0, True,
        ["fio-4k-randread-8j"])
    # A busy-polling lunard spends its core at any load: its CPU per I/O tells its work only
    # where the load keeps that core busy, as lunar-load's 8 x QD16 does.
    tgt_cpu = _cpu(results, "load-4k-randread-8s", "tgt")
    lunar_cpu = _cpu(results, "load-4k-randread-8s", "lunar")
    add("target CPU per 4 KiB I/O, both targets saturated (lunar-load randread 8 x QD16): "
        "tgt / lunar", tgt_cpu / lunar_cpu if tgt_cpu and lunar_cpu else None, 8.0, True,
        ["load-4k-randread-8s"])
    tgt_p50 = _lat(results, "fio-4k-randread-1j", "tgt", "p50")
    lunar_p50 = _lat(results, "fio-4k-randread-1j", "lunar", "p50")
    lunar_p99 = _lat(results, "fio-4k-randread-1j", "lunar", "p99")
    add("4 KiB QD1 randread p50 latency: lunar / tgt",
        lunar_p50 / tgt_p50 if tgt_p50 and lunar_p50 is not None else None, 0.5,
        False)
    add("4 KiB QD1 randread: lunar p99 / tgt p50",
        lunar_p99 / tgt_p50 if tgt_p50 and lunar_p99 is not None else None, 2.0,
        False)
    seq = ["fio-128k-read-4j", "fio-128k-write-4j"]
    add("128 KiB sequential, 4 jobs (read and write): lunar MiB/s / tgt MiB/s",
        _min_ratio(results, seq, "bw_bytes_per_s"), 2.0, True, seq)
    for client, many, few in (("lunar-load", "load-4k-randread-64s", "load-4k-randread-8s"),
                              ("fio", "fio-4k-randread-64j", "fio-4k-randread-8j")):
        many_iops = _metric(results, many, "lunar", "iops")
        few_iops = _metric(results, few, "lunar", "iops")
        add(f"64 sessions against 8 ({client}, lunar): IOPS(64) / IOPS(8)",
            many_iops / few_iops if many_iops is not None and few_iops else None, 0.9,
            True, [many, few])
    if ran(results, "spdk"):
        _spdk_goals(results, add)
    return out


def _spdk_goals(results, add):
    """The goals against SPDK's iSCSI target, the peer to beat: lunar at least at its level
    (a ratio of 1 or more; for latency, 1 or less)."""
    add("4 KiB random, one session at QD32 (iscsi-perf): lunar IOPS / SPDK IOPS",
        _ratio(results, "iscsi-perf-4k-qd32", peer="spdk"), 1.0, True, ["iscsi-perf-4k-qd32"])
    add("the same 1 x QD32 load from lunar-load: lunar IOPS / SPDK IOPS",
        _ratio(results, "load-4k-randread-1s-qd32", peer="spdk"), 1.0, True,
        ["load-4k-randread-1s-qd32"])
    fio8 = ["fio-4k-randread-8j", "fio-4k-randwrite-8j"]
    add("4 KiB random, 8 sessions (fio 8 jobs, read and write): lunar IOPS / SPDK IOPS",
        _min_ratio(results, fio8, peer="spdk"), 1.0, True, fio8)
    load8 = ["load-4k-randread-8s", "load-4k-randwrite-8s"]
    add("4 KiB random, 8 x QD16 (lunar-load, read and write): lunar IOPS / SPDK IOPS",
        _min_ratio(results, load8, peer="spdk"), 1.0, True, load8)
    seq = ["fio-128k-read-4j", "fio-128k-write-4j"]
    add("128 KiB sequential, 4 jobs (read and write): lunar MiB/s / SPDK MiB/s",
        _min_ratio(results, seq, "bw_bytes_per_s", peer="spdk"), 1.0, True, seq)
    spdk_p50 = _lat(results, "fio-4k-randread-1j", "spdk", "p50")
    lunar_p50 = _lat(results, "fio-4k-randread-1j", "lunar", "p50")
    add("4 KiB QD1 randread p50 latency: lunar / SPDK",
        lunar_p50 / spdk_p50 if spdk_p50 and lunar_p50 is not None else None, 1.0, False)


def _fmt(value, digits=0):
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _lat_text(metrics):
    lat = metrics.get("lat_us") if metrics else None
    if not lat:
        return "-"
    return "/".join(_fmt(lat.get(k), 0) for k in ("p50", "p99", "p99_9"))


def markdown(document):
    """The results as markdown: the table, the raw ceiling, idle sessions and the goals."""
    meta = document["meta"]
    rounds = meta.get("rounds", 1)
    rows = by_cell(document["cells"])
    has_spdk = ran(rows, "spdk")
    spdk_text = f", {meta.get('spdk_version') or 'SPDK'} (iscsi_tgt, AIO bdev)" if has_spdk else ""
    lines = [
        f"# lunar vs tgt{' and SPDK' if has_spdk else ''} — {meta['date']}",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Machine: {meta['cpus']} CPUs, kernel {meta['kernel']}. Backing: {meta['backing']}. "
        f"{meta['lunard_version']} (`--cores {meta['cores']} --poll-mode "
        f"{meta['poll_mode']}`), {meta['tgt_version']}{spdk_text}; fio {meta['fio_version']}. "
        f"Targets pinned to CPUs {meta['target_cpus'] or 'any'}, clients to "
        f"{meta['client_cpus'] or 'any'}. {meta['runtime_s']} s per cell after "
        f"{meta['ramp_s']} s of ramp.",
        "",
    ]
    if rounds > 1:
        lines += [
            f"Every figure is the median of {rounds} rounds of the whole matrix; the ratio "
            "column is the median of the rounds' ratios, each of two runs made one right "
            "after the other, and the last column lists them round by round.",
            "",
        ]
    lines += [
        "| cell | tgt IOPS | lunar IOPS | lunar/tgt | tgt MiB/s | lunar MiB/s | "
        "tgt lat µs p50/p99/p99.9 | lunar lat µs p50/p99/p99.9 | tgt CPU µs/IO | "
        "lunar CPU µs/IO | lunar reactors busy | lunar busy µs/IO | client cores tgt/lunar | "
        "client CPUs busy tgt/lunar |" + (" lunar/tgt per round |" if rounds > 1 else ""),
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        + ("--:|" if rounds > 1 else ""),
    ]
    for cell in document["cell_order"]:
        tgt, lunar, per_round, opening = _pair_columns(rows, cell, "tgt", rounds)
        lines.append(
            f"{opening} {_fmt(tgt.get('target_cpu_us_per_io'), 1)} | "
            f"{_fmt(lunar.get('target_cpu_us_per_io'), 1)} | "
            f"{_pct(lunar.get('target_reactors_busy'))} | "
            f"{_fmt(lunar.get('target_busy_us_per_io'), 1)} | "
            f"{_fmt(tgt.get('client_cpu_cores'), 2)}/{_fmt(lunar.get('client_cpu_cores'), 2)} | "
            f"{_pct(tgt.get('client_cpus_busy'))}/{_pct(lunar.get('client_cpus_busy'))} |"
            + (f" {' '.join(_fmt(r, 2) for r in per_round)} |" if rounds > 1 else "")
        )
    if has_spdk:
        lines += _spdk_table(document, rows, rounds)
    raw = [r for r in document["cells"] if r["target"] == "raw"]
    if raw:
        lines += ["", "Ceiling (fio io_uring on the backing device, no target):", ""]
        for r in raw:
            m = r.get("metrics")
            lines.append(
                f"- {r['title']}: "
                + (f"{_fmt(m['iops'])} IOPS, p50/p99/p99.9 {_lat_text(m)} µs"
                   if m else f"error: {r.get('error')}")
            )
    idle = document.get("idle_sessions") or {}
    if idle:
        lines += ["", "Idle sessions (target VmRSS before and after logging them in):", ""]
        for target, m in idle.items():
            if m.get("error"):
                lines.append(f"- {target}: error: {m['error']}")
                continue
            lines.append(
                f"- {target}: {m['sessions']} sessions, {_fmt(m['rss_before_bytes'] / MIB, 1)}"
                f" → {_fmt(m['rss_after_bytes'] / MIB, 1)} MiB, "
                f"{_fmt(m['per_session_bytes'] / 1024, 1)} KiB per session"
            )
    lines += ["", "Goals (issue 5):", ""]
    if rounds > 1:
        lines += ["| goal | median | wanted | met | client CPUs busy | lunar reactors busy | "
                  "per round |", "|---|--:|--:|:-:|--:|--:|--:|"]
    else:
        lines += ["| goal | measured | wanted | met | client CPUs busy | lunar reactors busy |",
                  "|---|--:|--:|:-:|--:|--:|"]
    for g in document["goals"]:
        wanted = "≥ " if g["at_least"] else "≤ "
        met = {True: "yes", False: "no", None: "-"}[g["met"]]
        line = (f"| {g['goal']} | {_fmt(g['value'], 2)} | {wanted}{g['threshold']} | {met} | "
                f"{_pct(g.get('client_cpus_busy'))} | {_pct(g.get('lunar_reactors_busy'))} |")
        if rounds > 1:
            line += f" {' '.join(_fmt(v, 2) for v in g.get('round_values', []))} |"
        lines.append(line)
    lines += [
        "",
        "CPU µs/IO is the target's CPU time (all threads, user + system, from /proc/PID/stat) "
        "over the steady part of the cell, divided by the I/Os done meanwhile. A busy-polling "
        "lunard spends its whole core whatever the load, so there it is one core divided by "
        "the IOPS. Client cores are the client's own CPU time (its processes and their "
        "children); client CPUs busy is how busy the CPUs the clients are pinned to were, "
        "whoever used them (the client, kernel workers of the loop device, softirqs of the "
        "loopback network). Near 100%, the client side, not the target, was the limit. lunar "
        "reactors busy is the share of lunard's reactor time spent in turns of the loop that "
        "did work (from `stats_get`), whatever the poll mode; lunar busy µs/IO is that busy "
        "time per I/O: the work lunard did per I/O, without the polling of a reactor waiting "
        "for its clients. In the goals, both busy shares are the busiest of lunar's runs of "
        "the goal's cells.",
    ]
    return "\n".join(lines) + "\n"


def _spdk_table(document, rows, rounds):
    """The markdown lines of the table of SPDK against lunar, cell by cell."""
    lines = [
        "",
        "Against SPDK's iSCSI target (the same cells, run one right after the other with "
        "tgt's and lunar's):",
        "",
        "| cell | SPDK IOPS | lunar IOPS | lunar/SPDK | SPDK MiB/s | lunar MiB/s | "
        "SPDK lat µs p50/p99/p99.9 | lunar lat µs p50/p99/p99.9 | client CPUs busy SPDK/lunar |"
        + (" lunar/SPDK per round |" if rounds > 1 else ""),
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|" + ("--:|" if rounds > 1 else ""),
    ]
    for cell in document["cell_order"]:
        spdk, lunar, per_round, opening = _pair_columns(rows, cell, "spdk", rounds)
        lines.append(
            f"{opening} {_pct(spdk.get('client_cpus_busy'))}/{_pct(lunar.get('client_cpus_busy'))} |"
            + (f" {' '.join(_fmt(r, 2) for r in per_round)} |" if rounds > 1 else "")
        )
    return lines


def _pair_columns(rows, cell, peer, rounds):
    """The peer's and lunar's rows of a cell, lunar/peer round by round, and the columns both
    tables open with: cell, IOPS of each, the ratio (the median of the rounds' ratios with
    several rounds), MiB/s of each, latency of each."""
    theirs = rows.get((cell["id"], peer), {})
    lunar = rows.get((cell["id"], "lunar"), {})
    tm, lm = theirs.get("metrics"), lunar.get("metrics")
    per_round = _round_ratios(theirs, lunar)
    if rounds > 1:
        ratio = median(per_round)
    else:
        ratio = (lm["iops"] / tm["iops"]) if tm and lm and tm["iops"] else None
    opening = (
        f"| {cell['title']} | {_cell_text(theirs, 'iops')} | {_cell_text(lunar, 'iops')} | "
        f"{_fmt(ratio, 2)} | {_cell_text(theirs, 'bw_bytes_per_s', MIB, 1)} | "
        f"{_cell_text(lunar, 'bw_bytes_per_s', MIB, 1)} | {_lat_text(tm)} | {_lat_text(lm)} |"
    )
    return theirs, lunar, per_round, opening


def _cell_text(row, key, scale=1.0, digits=0):
    """One metric of a row for a table: "error" if its run failed, "-" if it has none."""
    m = row.get("metrics")
    if row.get("error"):
        return "error"
    return _fmt(m[key] / scale, digits) if m else "-"


def _round_ratios(peer, lunar):
    """lunar IOPS / the peer's IOPS in every round both measured (None where one of them
    failed)."""
    pairs = zip(peer.get("round_iops") or [], lunar.get("round_iops") or [])
    return [lunar_iops / peer_iops if peer_iops and lunar_iops is not None else None
            for peer_iops, lunar_iops in pairs]


def _pct(share):
    return "-" if share is None else f"{share * 100:.0f}%"


def write_json(path, document):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2, sort_keys=True)
        f.write("\n")


def chart(path, document):
    """A PNG with four panels: 4 KiB IOPS (with the raw ceiling), 128 KiB bandwidth, QD1
    latency, and target CPU per I/O. Returns False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = by_cell(document["cells"])
    cells = document["cell_order"]
    colors = {"tgt": "#8c8c8c", "lunar": "#2b6cb0", "spdk": "#2f855a"}
    names = [t for t in ("tgt", "lunar", "spdk") if ran(rows, t)]
    width = 0.8 / max(len(names), 1)

    def values(ids, target, fn):
        out = []
        for cid in ids:
            row = rows.get((cid, target)) or {}
            out.append(fn(row) or 0.0)
        return out

    def bars(ax, ids, labels, fn, ylabel, title, log=False):
        xs = range(len(ids))
        for i, target in enumerate(names):
            offset = (i - (len(names) - 1) / 2) * width
            ax.bar([x + offset for x in xs], values(ids, target, fn), width,
                   label=target, color=colors[target])
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=7)

    def metric(key, scale=1.0):
        return lambda row: (row.get("metrics") or {}).get(key, 0.0) / scale

    small = [c for c in cells if c["bs"] == 4096]
    large = [c for c in cells if c["bs"] != 4096]
    short = lambda c: c["id"].replace("fio-", "").replace("load-", "load ")  # noqa: E731
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    bars(axes[0][0], [c["id"] for c in small], [short(c) for c in small], metric("iops"),
         "IOPS", "4 KiB IOPS (log scale)", log=True)
    for r in document["cells"]:
        if r["target"] == "raw" and r.get("metrics") and "qd32" in r["cell"]:
            axes[0][0].axhline(r["metrics"]["iops"], color="#c05621", linestyle="--",
                               linewidth=1, label="raw io_uring QD32")
            axes[0][0].legend(fontsize=7)
    bars(axes[0][1], [c["id"] for c in large], [short(c) for c in large],
         metric("bw_bytes_per_s", MIB), "MiB/s", "128 KiB sequential bandwidth")
    qd1 = [c for c in cells if c["id"].endswith("-1j")]
    lat_ids, lat_labels = [], []
    for c in qd1:
        for key in ("p50", "p99", "p99_9"):
            lat_ids.append((c["id"], key))
            lat_labels.append(f"{short(c)} {key.replace('_', '.')}")
    for i, target in enumerate(names):
        vals = []
        for cid, key in lat_ids:
            lat = ((rows.get((cid, target)) or {}).get("metrics") or {}).get("lat_us") or {}
            vals.append(lat.get(key) or 0.0)
        offset = (i - (len(names) - 1) / 2) * width
        axes[1][0].bar([x + offset for x in range(len(lat_ids))], vals, width,
                       label=target, color=colors[target])
    axes[1][0].set_xticks(list(range(len(lat_ids))))
    axes[1][0].set_xticklabels(lat_labels, rotation=30, ha="right", fontsize=7)
    axes[1][0].set_ylabel("µs")
    axes[1][0].set_yscale("log")
    axes[1][0].set_title("QD1 latency (log scale)", fontsize=9)
    axes[1][0].legend(fontsize=7)
    bars(axes[1][1], [c["id"] for c in small], [short(c) for c in small],
         lambda row: row.get("target_cpu_us_per_io"), "µs", "target CPU per I/O (4 KiB)")
    peers = " and ".join(n if n == "tgt" else "SPDK" for n in names if n != "lunar")
    fig.suptitle(f"lunar vs {peers} — {document['meta']['date']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
