"""The targets under test, started on the same backing device: tgt (tgtd + tgtadm, with
--bsoflags direct), lunard (a linear volume over the whole device) and, when given a binary,
SPDK's iscsi_tgt (an AIO bdev on the device). Each can be paused (SIGSTOP) while another one
is measured, so a busy-polling target does not steal the CPU the measured one runs on, and none
serves anything between its cells."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

READY_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10
RPC_TIMEOUT_S = 30
TGT_IQN = "iqn.2026-11.dev.lunar.bench:tgt"
LUNAR_IQN = "iqn.2026-11.dev.lunar.bench:lunar"
SPDK_IQN = "iqn.2026-11.dev.lunar.bench:spdk"
# Memory SPDK's DPDK environment reserves up front, in MiB (from anonymous memory: the bench
# runs it without hugepages, so it needs no set-up of the machine).
SPDK_MEM_MB = 1024


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def taskset(cpus):
    """The taskset prefix pinning a command to `cpus` (empty: no pinning)."""
    return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []


class Target:
    """A started target process: its name, LUN URL and pid."""

    name = "target"

    def __init__(self):
        self.process = None
        self.url = None
        self.paused = False

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def pause(self):
        if self.process and not self.paused:
            os.kill(self.process.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.process and self.paused:
            os.kill(self.process.pid, signal.SIGCONT)
            self.paused = False

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        if not self.process:
            return
        self.resume()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def wait_serving(url, target, log_path, what):
    """Waits until the LUN at `url` answers an INQUIRY (iscsi-inq logs in, asks, logs out)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            done = subprocess.run(["iscsi-inq", url], capture_output=True, timeout=5)
            if done.returncode == 0:
                return
        except subprocess.TimeoutExpired:
            pass
        if not target.alive() or time.monotonic() > deadline:
            target.stop()
            raise RuntimeError(f"{what} does not serve {url}; see {log_path}")
        time.sleep(0.2)


class Tgt(Target):
    """tgtd in the foreground on its own portal and management port, one disk LUN (LUN 1: tgt
    puts a controller on LUN 0)."""

    name = "tgt"

    def __init__(self, device, log_path, cpus):
        super().__init__()
        self.device = device
        self.log_path = log_path
        self.cpus = cpus
        self.port = free_port()
        # tgtd's management socket is /var/run/tgtd/socket.N: pick an N no other tgtd uses.
        self.control_port = next(
            n for n in range(4000 + os.getpid() % 1000, 9000)
            if not os.path.exists(f"/var/run/tgtd/socket.{n}")
        )

    def _tgtadm(self, *args):
        return subprocess.run(
            ["tgtadm", "-C", str(self.control_port), "--lld", "iscsi", *args],
            check=True, capture_output=True, text=True, timeout=RPC_TIMEOUT_S,
        ).stdout

    def start(self):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*taskset(self.cpus), "tgtd", "-f", "-C", str(self.control_port),
                 "--iscsi", f"portal=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                self._tgtadm("--op", "show", "--mode", "target")
                break
            except subprocess.CalledProcessError:
                if not self.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"tgtd did not start; see {self.log_path}")
                time.sleep(0.1)
        self._tgtadm("--op", "new", "--mode", "target", "--tid", "1", "-T", TGT_IQN)
        self._tgtadm("--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1",
                     "-b", self.device, "--bsoflags", "direct")
        self._tgtadm("--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL")
        self.url = f"iscsi://127.0.0.1:{self.port}/{TGT_IQN}/1"
        return self

    def stop(self):
        """tgtd ignores SIGTERM: ask it to shut down over its management socket first."""
        if self.process and self.process.poll() is None:
            self.resume()
            try:
                self._tgtadm_system_delete()
                self.process.wait(STOP_TIMEOUT_S)
            except (subprocess.SubprocessError, OSError):
                pass
        super().stop()

    def _tgtadm_system_delete(self):
        # tgtd refuses to shut down while it has targets.
        subprocess.run(["tgtadm", "-C", str(self.control_port), "--lld", "iscsi", "--op",
                        "delete", "--mode", "target", "--tid", "1", "--force"],
                       check=False, capture_output=True, timeout=RPC_TIMEOUT_S)
        subprocess.run(["tgtadm", "-C", str(self.control_port), "--op", "delete", "--mode",
                        "system"], check=True, capture_output=True, timeout=RPC_TIMEOUT_S)


class Lunar(Target):
    """lunard (release build) with a linear volume over the backing device, LUN 0."""

    name = "lunar"

    def __init__(self, lunard, device, size_bytes, block_size, cores, poll_mode, log_path,
                 cpus=()):
        super().__init__()
        # Every thread of lunard (its reactors pin themselves inside this set; the control
        # and RPC threads stay in it too), as tgtd's.
        self.cpus = list(cpus)
        self.lunard = lunard
        self.device = device
        self.size_bytes = size_bytes
        self.block_size = block_size
        self.cores = cores
        self.poll_mode = poll_mode
        self.log_path = log_path
        self.port = free_port()
        self.state_dir = tempfile.mkdtemp(prefix="lunar-bench-state-")
        self.socket_path = os.path.join(self.state_dir, "lunard.sock")
        self._rpc_id = 0

    def start(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [*taskset(self.cpus), self.lunard, "--cores", str(self.cores),
             "--poll-mode", self.poll_mode,
             "--listen", f"127.0.0.1:{self.port}", "--state-dir", self.state_dir,
             "--rpc-socket", self.socket_path, "--log-level", "warn"],
            stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
        )
        log.close()
        ready = threading.Event()

        def watch(stdout):
            for line in stdout:
                if line.startswith("lunard ready:"):
                    ready.set()

        threading.Thread(target=watch, args=(self.process.stdout,), daemon=True).start()
        if not ready.wait(READY_TIMEOUT_S):
            self.stop()
            raise RuntimeError(f"lunard printed no ready line; see {self.log_path}")
        self.rpc("device_add", {"name": "bench0", "path": self.device})
        self.rpc("volume_create", {
            "name": "bench0",
            "layout": {"linear": {"device": "bench0", "offset_bytes": 0,
                                  "size_bytes": self.size_bytes}},
            "block_size": self.block_size,
        })
        self.rpc("target_create", {
            "iqn": LUNAR_IQN,
            "luns": [{"lun": 0, "volume": "bench0", "read_only": False}],
        })
        self.url = f"iscsi://127.0.0.1:{self.port}/{LUNAR_IQN}/0"
        return self

    def rpc(self, method, params):
        """One JSON-RPC call over the unix socket (one JSON object per line each way)."""
        self._rpc_id += 1
        request = {"jsonrpc": "2.0", "id": self._rpc_id, "method": method, "params": params}
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(RPC_TIMEOUT_S)
            s.connect(self.socket_path)
            s.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        response = json.loads(data)
        if "error" in response:
            raise RuntimeError(f"lunard {method}: {response['error']}")
        return response.get("result")

    def reactor_time_us(self):
        """(busy, total) µs of lunard's reactors since it started, summed over reactors (from
        `stats_get`); None if lunard does not answer."""
        try:
            reactors = self.rpc("stats_get", {}).get("reactors") or []
        except (OSError, RuntimeError, ValueError):
            return None
        if not reactors:
            return None
        busy = sum(r["busy_us"] for r in reactors)
        total = sum(r["busy_us"] + r["idle_poll_us"] + r["sleep_us"] for r in reactors)
        return busy, total

    def stop(self):
        super().stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def version(self):
        out = subprocess.run([self.lunard, "--version"], capture_output=True, text=True)
        return out.stdout.strip()


def spdk_config(device, block_size, port, queue_depth=128):
    """The JSON configuration SPDK's iscsi_tgt starts from (`--json`): an AIO bdev over the
    device (O_DIRECT, as tgt's --bsoflags direct and lunard's backing), one portal on
    127.0.0.1:port, an initiator group taking anyone from 127.0.0.1, and one target node with
    the bdev on LUN 0, CHAP off."""
    return {"subsystems": [
        {"subsystem": "bdev", "config": [
            {"method": "bdev_aio_create",
             "params": {"name": "bench0", "filename": device, "block_size": block_size}},
        ]},
        {"subsystem": "iscsi", "config": [
            {"method": "iscsi_create_portal_group",
             "params": {"tag": 1, "portals": [{"host": "127.0.0.1", "port": str(port)}]}},
            {"method": "iscsi_create_initiator_group",
             "params": {"tag": 1, "initiators": ["ANY"], "netmasks": ["127.0.0.1/32"]}},
            {"method": "iscsi_create_target_node",
             "params": {"name": SPDK_IQN, "alias_name": "bench0",
                        "luns": [{"bdev_name": "bench0", "lun_id": 0}],
                        "pg_ig_maps": [{"pg_tag": 1, "ig_tag": 1}],
                        "queue_depth": queue_depth, "disable_chap": True}},
        ]},
    ]}


def spdk_command(binary, cpus, config_path, rpc_socket):
    """iscsi_tgt's command line: its reactors on `cpus` (core 0 without pinning), no
    hugepages, no PCI."""
    mask = sum(1 << c for c in (cpus or [0]))
    return [binary, "-m", hex(mask), "--no-huge", "-s", str(SPDK_MEM_MB), "-u",
            "--disable-cpumask-locks",
            "-r", rpc_socket, "--json", config_path]


def spdk_library_path(binary):
    """The directory of the shared libraries of an SPDK build tree (build/bin/iscsi_tgt ->
    build/lib), when there is one, for LD_LIBRARY_PATH; None otherwise."""
    lib = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(binary))), "lib")
    return lib if os.path.isdir(lib) else None


class Spdk(Target):
    """SPDK's iscsi_tgt, the peer the goals name: one busy-polled reactor per CPU it is given,
    an AIO bdev on the backing device, LUN 0."""

    name = "spdk"

    def __init__(self, binary, device, block_size, log_path, cpus):
        super().__init__()
        self.binary = binary
        self.device = device
        self.block_size = block_size
        self.log_path = log_path
        self.cpus = list(cpus)
        self.port = free_port()
        self.state_dir = tempfile.mkdtemp(prefix="lunar-bench-spdk-")

    def start(self):
        config_path = os.path.join(self.state_dir, "iscsi.json")
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump(spdk_config(self.device, self.block_size, self.port), f, indent=1)
        env = dict(os.environ)
        lib = spdk_library_path(self.binary)
        if lib:
            env["LD_LIBRARY_PATH"] = ":".join(p for p in (lib, env.get("LD_LIBRARY_PATH")) if p)
        cmd = spdk_command(self.binary, self.cpus, config_path,
                           os.path.join(self.state_dir, "spdk.sock"))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*taskset(self.cpus), *cmd], stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )
        self.url = f"iscsi://127.0.0.1:{self.port}/{SPDK_IQN}/0"
        wait_serving(self.url, self, self.log_path, "SPDK's iscsi_tgt")
        return self

    def stop(self):
        super().stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def version(self):
        """SPDK's version from the line it logged at start ("Starting SPDK v25.09 git sha1 ...
        / DPDK 22.11.11 initialization...")."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if "Starting SPDK" in line:
                        return line.split("Starting ", 1)[1].split(" initialization")[0]
        except OSError:
            pass
        return "SPDK (version unknown)"
