"""The cells of a run: which client runs which load. Each target cell runs against tgt and
lunar one after the other; raw cells run fio's io_uring engine straight on the device."""

from dataclasses import dataclass

KIB = 1024


@dataclass(frozen=True)
class Cell:
    """One measurement. `kind` is fio, iscsi-perf, load (lunar-load) or raw (fio io_uring on
    the device). `jobs` is fio's numjobs or lunar-load's sessions; `iodepth` the commands in
    flight per job or session."""

    id: str
    title: str
    kind: str
    rw: str
    bs: int
    jobs: int = 1
    iodepth: int = 1

    @property
    def on_targets(self):
        return self.kind != "raw"


RAW_CELLS = (
    Cell("raw-4k-randread-qd32", "raw io_uring 4 KiB randread QD32", "raw", "randread", 4 * KIB,
         iodepth=32),
    Cell("raw-4k-randread-qd1", "raw io_uring 4 KiB randread QD1", "raw", "randread", 4 * KIB),
)

TARGET_CELLS = (
    Cell("fio-4k-randread-1j", "fio 4 KiB randread, 1 job (QD1)", "fio", "randread", 4 * KIB),
    Cell("fio-4k-randwrite-1j", "fio 4 KiB randwrite, 1 job (QD1)", "fio", "randwrite",
         4 * KIB),
    Cell("fio-4k-randread-8j", "fio 4 KiB randread, 8 jobs", "fio", "randread", 4 * KIB,
         jobs=8),
    Cell("fio-4k-randwrite-8j", "fio 4 KiB randwrite, 8 jobs", "fio", "randwrite", 4 * KIB,
         jobs=8),
    Cell("fio-128k-read-4j", "fio 128 KiB read, 4 jobs", "fio", "read", 128 * KIB, jobs=4),
    Cell("fio-128k-write-4j", "fio 128 KiB write, 4 jobs", "fio", "write", 128 * KIB, jobs=4),
    Cell("iscsi-perf-4k-qd32", "iscsi-perf 4 KiB randread QD32, 1 session", "iscsi-perf",
         "randread", 4 * KIB, iodepth=32),
    # The loads of the two cells above, from lunar-load: it spends a fraction of libiscsi's
    # client CPU per command, so these show the targets where fio and iscsi-perf show the
    # client (see bench/README.md, "When the client is the limit").
    Cell("load-4k-randread-8s-qd1", "lunar-load 4 KiB randread, 8 sessions x QD1", "load",
         "randread", 4 * KIB, jobs=8, iodepth=1),
    Cell("load-4k-randread-1s-qd32", "lunar-load 4 KiB randread, 1 session x QD32", "load",
         "randread", 4 * KIB, jobs=1, iodepth=32),
    Cell("load-4k-randread-8s", "lunar-load 4 KiB randread, 8 sessions x QD16", "load",
         "randread", 4 * KIB, jobs=8, iodepth=16),
    Cell("load-4k-randwrite-8s", "lunar-load 4 KiB randwrite, 8 sessions x QD16", "load",
         "randwrite", 4 * KIB, jobs=8, iodepth=16),
    Cell("fio-4k-randread-64j", "fio 4 KiB randread, 64 jobs", "fio", "randread", 4 * KIB,
         jobs=64),
    Cell("load-4k-randread-64s", "lunar-load 4 KiB randread, 64 sessions x QD2", "load",
         "randread", 4 * KIB, jobs=64, iodepth=2),
)


def select(cells, wanted):
    """The cells whose id is in `wanted` (all when `wanted` is empty); unknown ids are an
    error."""
    if not wanted:
        return list(cells)
    known = {c.id for c in cells}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ValueError(f"unknown cells: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return [c for c in cells if c.id in wanted]
