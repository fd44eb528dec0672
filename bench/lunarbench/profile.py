"""Where a target spends its CPU in a cell (`bench/run.sh --profile`): `perf record -g` of the
target process over the cell's steady window, then the symbols with the most samples from
`perf report`, by thread, shared object and symbol, as a text file beside results.json; and
`perf stat` of the instructions it ran meanwhile, user and kernel, which the caller turns into
instructions per I/O (steadier than CPU time on a shared machine)."""

import os
import shutil
import subprocess
import threading
import time

# Lines of the report kept: the symbols with the most samples.
TOP_SYMBOLS = 40


def perf_available():
    return shutil.which("perf") is not None


def record_cmd(pid, seconds, data_path):
    """perf record of every thread of `pid`, with call graphs, for `seconds`."""
    return ["perf", "record", "-q", "-g", "-p", str(pid), "-o", data_path,
            "--", "sleep", f"{seconds:.1f}"]


def stat_cmd(pid, seconds, out_path):
    """perf stat of the user and kernel instructions of every thread of `pid`, for `seconds`."""
    return ["perf", "stat", "-x", ",", "-e", "instructions:u,instructions:k", "-p", str(pid),
            "-o", out_path, "--", "sleep", f"{seconds:.1f}"]


def parse_stat(text):
    """{"user": n, "kernel": n} from perf stat's CSV output; a count perf could not take is
    left out."""
    counts = {}
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) < 3 or line.startswith("#"):
            continue
        try:
            value = int(fields[0])
        except ValueError:
            continue
        if fields[2] == "instructions:u":
            counts["user"] = value
        elif fields[2] == "instructions:k":
            counts["kernel"] = value
    return counts


def report_cmd(data_path):
    """perf report of samples by thread name, shared object and symbol, without call graphs."""
    return ["perf", "report", "-i", data_path, "--no-children", "--sort", "comm,dso,sym",
            "-g", "none", "--stdio"]


def top_lines(report_text, limit=TOP_SYMBOLS):
    """The sample lines of a perf report (those starting with a percentage), most first."""
    lines = []
    for line in report_text.splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        head = text.split(None, 1)[0]
        if not head.endswith("%"):
            continue
        try:
            share = float(head[:-1])
        except ValueError:
            continue
        lines.append((share, text))
    lines.sort(key=lambda item: -item[0])
    return [text for _, text in lines[:limit]]


class WindowProfiler:
    """Records `pid` from `start` to `end` (time.monotonic() values) in a thread; `finish()`
    waits for the recording and writes the report to `report_path`."""

    def __init__(self, pid, start, end, report_path):
        self.report_path = report_path
        self.data_path = report_path + ".data"
        self.stat_path = report_path + ".stat"
        self.error = None
        # Instructions over the window, and the window's length in seconds.
        self.instructions = {}
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._record, args=(pid, start, end), daemon=True)
        self._thread.start()

    def _record(self, pid, start, end):
        time.sleep(max(0.0, start - time.monotonic()))
        seconds = end - time.monotonic()
        if seconds <= 0:
            self.error = "the window was over before the recording could start"
            return
        self.seconds = seconds
        stat = subprocess.Popen(stat_cmd(pid, seconds, self.stat_path),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        done = subprocess.run(record_cmd(pid, seconds, self.data_path), capture_output=True,
                              text=True, errors="replace")
        stat.wait()
        if done.returncode != 0:
            self.error = f"perf record failed: {done.stderr.strip()[-300:]}"
        try:
            with open(self.stat_path, encoding="utf-8") as f:
                self.instructions = parse_stat(f.read())
            os.unlink(self.stat_path)
        except OSError:
            pass

    def finish(self, iops=None):
        """Writes the report (with instructions per I/O when `iops` is given); returns its
        path, or None (see `error`)."""
        self._thread.join()
        if self.error:
            return None
        done = subprocess.run(report_cmd(self.data_path), capture_output=True, text=True,
                              errors="replace")
        try:
            os.unlink(self.data_path)
        except OSError:
            pass
        if done.returncode != 0:
            self.error = f"perf report failed: {done.stderr.strip()[-300:]}"
            return None
        with open(self.report_path, "w", encoding="utf-8") as f:
            per_io = self.instructions_per_io(iops)
            if per_io:
                f.write("# instructions per I/O: "
                        + ", ".join(f"{k} {v:,.0f}" for k, v in per_io.items()) + "\n")
            f.write("# share of the target's samples: thread, object, symbol\n")
            f.write("\n".join(top_lines(done.stdout)) + "\n")
        return self.report_path

    def instructions_per_io(self, iops):
        """{"user": n, "kernel": n} instructions per I/O over the window, or {}."""
        if not iops or self.seconds <= 0:
            return {}
        return {k: v / (iops * self.seconds) for k, v in self.instructions.items()}
