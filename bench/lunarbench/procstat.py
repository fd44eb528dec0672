"""CPU time and resident memory of a process, from /proc/PID/stat and /proc/PID/status, and a
sampler that measures CPU use over the steady part of a client run."""

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
    """Samples the CPU time of named processes at two instants and reports each one's CPU use
    in between, as cores (CPU seconds per second). Used to measure the steady state of a run,
    away from its start-up and wind-down."""

    def __init__(self, pids, start_at, end_at):
        self._pids = {name: pid for name, pid in pids.items() if pid}
        self._start_at = start_at
        self._end_at = end_at
        self._samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self):
        self._samples.append(
            (time.monotonic(), {n: cpu_seconds(p) for n, p in self._pids.items()})
        )

    def _run(self):
        for at in (self._start_at, self._end_at):
            if self._stop.wait(max(0.0, at - time.monotonic())):
                return
            self._sample()

    def result(self):
        """{name: cores} over the window, or {} when the run ended before the window did."""
        self._stop.set()
        self._thread.join()
        if len(self._samples) < 2:
            return {}
        (t1, first), (t2, second) = self._samples
        out = {}
        for name in self._pids:
            if first.get(name) is not None and second.get(name) is not None and t2 > t1:
                out[name] = (second[name] - first[name]) / (t2 - t1)
        return out
