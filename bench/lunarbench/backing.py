"""The backing device both targets serve: by default a loop device over a file in tmpfs (so the
device is not the bottleneck), or a file or block device given on the command line. It is
filled with random data first, so reads return real data and no layer can skip zeros.

The loop device runs in direct I/O mode unless asked otherwise: the kernel then hands each
request to tmpfs without the loop device's own page cache, and most of them complete without
waking a loop worker thread, which would otherwise run on the clients' CPU and slow whichever
target is measured."""

import os
import stat
import subprocess

TMPFS_DIR = "/dev/shm"
FILL_CHUNK_BYTES = 1 << 20


def _run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def device_size_bytes(path):
    """Size of a block device or a regular file."""
    mode = os.stat(path).st_mode
    if stat.S_ISBLK(mode):
        return int(_run("blockdev", "--getsize64", path))
    return os.stat(path).st_size


def fill(path, size_bytes):
    """Writes `size_bytes` of random data at the start of `path` (a file or a block device),
    bypassing the page cache for devices."""
    count = size_bytes // FILL_CHUNK_BYTES
    flags = ["oflag=direct"] if stat.S_ISBLK(os.stat(path).st_mode) else []
    subprocess.run(
        ["dd", "if=/dev/urandom", f"of={path}", f"bs={FILL_CHUNK_BYTES}", f"count={count}",
         "conv=notrunc", "status=none", *flags],
        check=True,
    )


class Backing:
    """A backing device for the run; a context manager that cleans up what it created."""

    def __init__(self, size_bytes, device=None, do_fill=True, loop_direct_io=True):
        self.size_bytes = size_bytes
        self.loop_direct_io = loop_direct_io
        self.given = device
        self.do_fill = do_fill
        self.path = None
        self.file = None
        self.loop = None
        self.kind = None

    def __enter__(self):
        if self.given:
            self.path = self.given
            available = device_size_bytes(self.path)
            if available < self.size_bytes:
                self.size_bytes = available - available % FILL_CHUNK_BYTES
            self.kind = "block device" if stat.S_ISBLK(os.stat(self.path).st_mode) else "file"
            if self.do_fill:
                fill(self.path, self.size_bytes)
            return self
        self.file = os.path.join(TMPFS_DIR, f"lunar-bench-{os.getpid()}.img")
        with open(self.file, "wb") as f:
            f.truncate(self.size_bytes)
        fill(self.file, self.size_bytes)
        direct_io = "on" if self.loop_direct_io else "off"
        self.loop = _run("losetup", "--find", "--show", f"--direct-io={direct_io}", self.file)
        self.path = self.loop
        self.kind = f"loop device on tmpfs (direct I/O {direct_io})"
        return self

    def __exit__(self, *exc):
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop], check=False, capture_output=True)
            self.loop = None
        if self.file:
            try:
                os.unlink(self.file)
            except OSError:
                pass
            self.file = None
        return False
