"""CPU time and resident memory of a process (with its children: fio runs each job in a process
of its own), from /proc/PID/stat and /proc/PID/status; how busy a set of CPUs is, from
/proc/stat (whoever used them: the client, kernel workers, softirqs); and a sampler that
measures both over the steady part of a client run."""

import os
import threading
import time

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def parse_stat_cpu_ticks(stat_text):
    """utime + stime (clock ticks) from the text of /proc/PID/stat (all threads of the process).

    The command name (field 2) may contain spaces and parentheses, so fields are counted after
    its closing parenthesis: state is field 3, utime field 14, stime field 15.
    """
    rest = stat_text[stat_text.rindex(")") + 2 :].split()
    return int(rest[11]) + int(rest[12])


def cpu_seconds(pid):
    """CPU seconds a process has used so far (user + system, all threads); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return parse_stat_cpu_ticks(f.read()) / CLOCK_TICKS_PER_S
    except (OSError, ValueError, IndexError):
        return None


def child_pids(pid):
    """Children of a process (of all its threads); empty if it is gone."""
    children = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                children += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            pass
    return children


def tree_cpu_seconds(pid):
    """CPU seconds used so far by a process and every descendant still alive; None if the
    process itself is gone."""
    own = cpu_seconds(pid)
    if own is None:
        return None
    return own + sum(tree_cpu_seconds(c) or 0.0 for c in child_pids(pid))


def parse_proc_stat_cpus(stat_text, cpus):
    """(busy ticks, total ticks) summed over `cpus` from the text of /proc/stat; busy is every
    state but idle and iowait."""
    busy = total = 0
    wanted = {f"cpu{c}" for c in cpus}
    for line in stat_text.splitlines():
        fields = line.split()
        if not fields or fields[0] not in wanted:
            continue
        ticks = [int(v) for v in fields[1:]]
        # user nice system idle iowait irq softirq steal (guest time is inside user).
        state = ticks[:8]
        total += sum(state)
        busy += sum(state) - state[3] - state[4]
    return busy, total


def cpus_ticks(cpus):
    """(busy, total) ticks of `cpus` so far; None if /proc/stat cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            return parse_proc_stat_cpus(f.read(), cpus)
    except (OSError, ValueError):
        return None


def parse_status_rss_bytes(status_text):
    """VmRSS from the text of /proc/PID/status, in bytes (None if absent)."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"unexpected VmRSS unit {unit!r}")
            return int(value) * 1024
    return None


def rss_bytes(pid):
    """Resident memory of a process in bytes; None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            return parse_status_rss_bytes(f.read())
    except (OSError, ValueError):
        return None


class WindowSampler:
    """Samples the CPU time of named processes (with their children), the busy time of named
    CPU sets and named busy-time probes at two instants, and reports each process's CPU use in
    between as cores (CPU seconds per second), and each CPU set's and probe's busy share (0 to
    1). A probe is a callable returning (busy µs, total µs) so far, or None; for each probe
    the result also has `<name>_busy_cores`, its busy µs per µs of wall time. Used to measure
    the steady state of a run, away from its start-up and wind-down."""

    def __init__(self, pids, start_at, end_at, cpu_sets=None, probes=None):
        self._pids = {name: pid for name, pid in pids.items() if pid}
        self._cpu_sets = {name: cpus for name, cpus in (cpu_sets or {}).items() if cpus}
        self._probes = {name: probe for name, probe in (probes or {}).items() if probe}
        self._start_at = start_at
        self._end_at = end_at
        self._samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self):
        values = {n: tree_cpu_seconds(p) for n, p in self._pids.items()}
        values.update({n: cpus_ticks(c) for n, c in self._cpu_sets.items()})
        values.update({n: probe() for n, probe in self._probes.items()})
        self._samples.append((time.monotonic(), values))

    def _run(self):
        for at in (self._start_at, self._end_at):
            if self._stop.wait(max(0.0, at - time.monotonic())):
                return
            self._sample()

    def result(self):
        """{name: cores} for the processes and {name: busy share} for the CPU sets over the
        window, or {} when the run ended before the window did."""
        self._stop.set()
        self._thread.join()
        if len(self._samples) < 2:
            return {}
        (t1, first), (t2, second) = self._samples
        out = {}
        for name in self._pids:
            if first.get(name) is not None and second.get(name) is not None and t2 > t1:
                out[name] = (second[name] - first[name]) / (t2 - t1)
        for name in [*self._cpu_sets, *self._probes]:
            if first.get(name) and second.get(name):
                busy = second[name][0] - first[name][0]
                total = second[name][1] - first[name][1]
                if total > 0:
                    out[name] = busy / total
                if name in self._probes and t2 > t1:
                    out[f"{name}_busy_cores"] = busy / 1e6 / (t2 - t1)
        return out
