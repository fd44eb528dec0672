//! The reactors serving every layout kind, in-process, with a small stand-in for the control
//! thread: a client writes and reads known data through iSCSI while the test checks where the
//! bytes landed on the backing files. Thin segments read as zeros until a write faults and the
//! stand-in allocates them; a mirror read that fails on one leg is served by the other; a mirror
//! write that fails on one leg succeeds on the others once the leg is taken out.

use std::fs::{File, OpenOptions};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use lunar_reactor::{
    BackendFile, BackendKind, DataPlane, DataPlaneConfig, DirtyRegions, LunEntry, PollMode,
    RequestKind, Snapshot, TargetEntry, VolumeEntry,
};
use lunar_scsi::ScsiReply;
use lunar_tests::backing::{allocated_bytes, read_at, SparseFile};
use lunar_tests::initiator::{pattern, BlockClient};
use lunar_volume::layout::{Layout, LegHealth, MirrorLeg, ReadPolicy};
use lunar_volume::{FaultReason, Location, SegmentEntry, VolumeMap};

const IQN: &str = "iqn.2026-11.dev.lunar:layouts";
const MIB: u64 = 1 << 20;
const BLOCK: u32 = 512;
/// Dirty-region granularity of the stand-in control thread.
const REGION_BYTES: u64 = 256 * 1024;

/// A data plane with one volume exported as LUN 0, and the stand-in control thread's state.
struct Rig {
    plane: DataPlane,
    devices: Vec<Option<Arc<BackendFile>>>,
    layout: Layout,
    /// Next free slot of the thin pool (device 0), in bytes.
    next_slot_bytes: u64,
    /// Leg failures reported: (mirror, leg, write).
    leg_failures: Vec<(u32, u32, bool)>,
    faults_served: usize,
    /// Regions written while a mirror leg is out (from the first leg failure on).
    dirty: Option<DirtyRegions>,
    /// Write-log requests served: (offset, len).
    logged: Vec<(u64, u64)>,
}

fn open_device(path: &Path) -> Arc<BackendFile> {
    Arc::new(BackendFile::open(path).expect("open backing file"))
}

/// A device whose writes fail with ENOSPC and whose reads return zeros (`/dev/full`), posing
/// as a file of `size_bytes`.
fn failing_writes_device(size_bytes: u64) -> Arc<BackendFile> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    Arc::new(BackendFile {
        fd: OwnedFd::from(file),
        path: "/dev/full".into(),
        kind: BackendKind::File,
        size_bytes,
        logical_block_bytes: BLOCK,
        direct: false,
    })
}

impl Rig {
    fn start(devices: Vec<Arc<BackendFile>>, layout: Layout) -> Rig {
        let plane = DataPlane::start(DataPlaneConfig {
            cores: vec![0],
            poll_mode: PollMode::Adaptive,
            listen: "127.0.0.1:0".parse().expect("address"),
            connection: lunar_iscsi::ConnConfig::default(),
            control_bell: lunar_reactor::Doorbell::unheard(),
        })
        .expect("data plane starts");
        let mut rig = Rig {
            plane,
            devices: devices.into_iter().map(Some).collect(),
            layout,
            next_slot_bytes: 0,
            leg_failures: Vec::new(),
            faults_served: 0,
            dirty: None,
            logged: Vec::new(),
        };
        rig.publish();
        rig
    }

    fn publish(&mut self) {
        let map = VolumeMap::try_new(self.layout.clone()).expect("valid layout");
        let snapshot = Snapshot {
            generation: 0,
            devices: self.devices.clone(),
            volumes: vec![VolumeEntry {
                name: "v".to_string(),
                uid: 0x1234,
                block_size: BLOCK,
                map,
                reservations: Arc::default(),
                dirty_regions: self.dirty.clone().map(Arc::new),
            }],
            targets: vec![TargetEntry {
                iqn: IQN.to_string(),
                luns: vec![LunEntry {
                    lun: 0,
                    volume: 0,
                    read_only: false,
                    removable: false,
                }],
                allowed_initiators: Vec::new(),
                chap: None,
            }],
            discovery_chap: None,
        };
        self.plane.publish(snapshot).expect("publish");
    }

    /// Run `client` on its own thread while this thread answers the reactors as a control
    /// thread would; returns what the client returned.
    fn drive<T: Send + 'static>(
        &mut self,
        client: impl FnOnce(std::net::SocketAddr) -> T + Send + 'static,
    ) -> T {
        let addr = self.plane.listen_addr();
        let (done_tx, done_rx) = mpsc::channel();
        let worker = thread::spawn(move || {
            let result = client(addr);
            let _ = done_tx.send(());
            result
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while done_rx.try_recv().is_err() {
            assert!(Instant::now() < deadline, "the client did not finish");
            for request in self.plane.poll() {
                if let Some(reply) = self.serve(&request.kind) {
                    self.plane.answer(request.id, reply);
                }
            }
            thread::sleep(Duration::from_micros(200));
        }
        worker.join().expect("client thread")
    }

    /// The answer to one request (`None`: it expects none).
    fn serve(&mut self, kind: &RequestKind) -> Option<ScsiReply> {
        match kind {
            RequestKind::Fault { faults, .. } => {
                for (segment, reason) in faults {
                    assert_eq!(*reason, FaultReason::WriteToZero, "only thin faults here");
                    let slot = self.next_slot_bytes;
                    let Some(Layout::Segmented {
                        entries,
                        segment_bytes,
                        ..
                    }) = self.layout.find_mut(segment.node)
                    else {
                        panic!("fault names no segment table: {segment:?}");
                    };
                    self.next_slot_bytes += *segment_bytes;
                    let location = Location {
                        device: 0,
                        offset_bytes: slot,
                    };
                    *entries = entries
                        .with_entry(segment.index, SegmentEntry::Mapped(location))
                        .expect("segment index");
                }
                self.faults_served += 1;
                self.publish();
            }
            RequestKind::LegFailed { leg, write, .. } => {
                self.leg_failures.push((leg.mirror, leg.leg, *write));
                if let Some(Layout::Mirror { legs, .. }) = self.layout.find_mut(leg.mirror) {
                    legs[leg.leg as usize].health = LegHealth::Faulty;
                }
                let size = VolumeMap::new(self.layout.clone()).size_bytes;
                self.dirty
                    .get_or_insert_with(|| DirtyRegions::new(REGION_BYTES, size));
                self.publish();
            }
            RequestKind::LogWrites {
                offset_bytes,
                len_bytes,
                ..
            } => {
                self.logged.push((*offset_bytes, *len_bytes));
                let dirty = self.dirty.as_mut().expect("a leg is out");
                dirty.mark_range(*offset_bytes, *len_bytes);
                self.publish();
            }
            RequestKind::NexusLost { .. } => return None,
            other => panic!("unexpected request {other:?}"),
        }
        Some(ScsiReply {
            status: 0,
            sense: Vec::new(),
            data_in: Vec::new(),
            transfer_len_bytes: 0,
        })
    }
}

fn linear(device: u32, offset_bytes: u64, size_bytes: u64) -> Layout {
    Layout::Linear {
        device,
        offset_bytes,
        size_bytes,
    }
}

/// Writes `blocks` blocks of pattern `seed` at `lba` and reads them back.
fn write_then_read(
    addr: std::net::SocketAddr,
    writes: &[(u64, u32)],
    seed: u64,
) -> Vec<(u64, Vec<u8>)> {
    let mut client = BlockClient::connect(addr, IQN, 0).expect("login");
    for &(lba, blocks) in writes {
        client
            .write(lba, &pattern(seed, lba, blocks, BLOCK), false)
            .expect("write");
    }
    writes
        .iter()
        .map(|&(lba, blocks)| (lba, client.read(lba, blocks).expect("read")))
        .collect()
}

#[test]
fn stripe_of_concats_puts_every_block_where_the_layout_says() {
    let files: Vec<SparseFile> = (0..3).map(|_| SparseFile::create(8 * MIB)).collect();
    let devices = files.iter().map(|f| open_device(f.path())).collect();
    let unit = 64 * 1024;
    // Member 0: 2 MiB of file 0 then 2 MiB of file 2; member 1: 4 MiB of file 1.
    let layout = Layout::Stripe {
        unit_bytes: unit,
        members: vec![
            Layout::Concat(vec![linear(0, 0, 2 * MIB), linear(2, MIB, 2 * MIB)]),
            linear(1, 4096, 4 * MIB),
        ],
    };
    let mut rig = Rig::start(devices, layout);
    // Writes crossing unit and concat boundaries, up to the 1 MiB transfer limit.
    let writes = [(0, 8), (120, 16), (2000, 2048), (8190, 4), (16000, 384)];
    let read = rig.drive(move |addr| write_then_read(addr, &writes, 7));
    for (lba, data) in &read {
        let blocks = (data.len() / BLOCK as usize) as u32;
        assert_eq!(data, &pattern(7, *lba, blocks, BLOCK), "read back at {lba}");
        // Each block is where the stripe and the concat put it.
        for block in 0..u64::from(blocks) {
            let volume_byte = (lba + block) * u64::from(BLOCK);
            let unit_index = volume_byte / unit;
            let member = unit_index % 2;
            let member_byte = unit_index / 2 * unit + volume_byte % unit;
            let (path, offset) = match member {
                0 if member_byte < 2 * MIB => (files[0].path(), member_byte),
                0 => (files[2].path(), MIB + member_byte - 2 * MIB),
                _ => (files[1].path(), 4096 + member_byte),
            };
            let at = (block * u64::from(BLOCK)) as usize;
            assert_eq!(
                read_at(path, offset, BLOCK as usize),
                data[at..at + BLOCK as usize],
                "block {} on member {member}",
                lba + block
            );
        }
    }
    rig.plane.shutdown();
}

#[test]
fn thin_segments_read_zeros_and_allocate_on_first_write() {
    let pool = SparseFile::create(16 * MIB);
    let devices = vec![open_device(pool.path())];
    let segment = MIB;
    let mut rig = Rig::start(devices, Layout::thin(1, 8 * MIB, segment));
    let zeros = rig.drive(|addr| {
        let mut client = BlockClient::connect(addr, IQN, 0).expect("login");
        client
            .read(0, (8 * MIB / u64::from(BLOCK)) as u32)
            .expect("read")
    });
    assert!(zeros.iter().all(|&b| b == 0), "a thin volume reads zeros");
    assert_eq!(rig.faults_served, 0, "reads of Zero segments do not fault");
    assert_eq!(allocated_bytes(pool.path()), 0, "and do no I/O");
    // Segment 5 first (slot 0), then a write across segments 2 and 3 (slots 1 and 2).
    let writes = [(5 * 2048 + 100, 8), (3 * 2048 - 4, 8)];
    let read = rig.drive(move |addr| write_then_read(addr, &writes, 3));
    for (lba, data) in &read {
        assert_eq!(data, &pattern(3, *lba, 8, BLOCK), "read back at {lba}");
    }
    let Layout::Segmented { entries, .. } = &rig.layout else {
        unreachable!()
    };
    let slot_of = |index: u64| match entries.get(index) {
        Some(SegmentEntry::Mapped(location)) => location.offset_bytes,
        other => panic!("segment {index} is {other:?}"),
    };
    assert_eq!(slot_of(5), 0, "first write allocated the first slot");
    assert_eq!(
        entries.counts().get(lunar_volume::SegmentState::Mapped),
        3,
        "only the written segments are allocated"
    );
    let within = (100 * u64::from(BLOCK)) % segment;
    assert_eq!(
        read_at(pool.path(), slot_of(5) + within, 8 * BLOCK as usize),
        pattern(3, 5 * 2048 + 100, 8, BLOCK),
        "the data sits in segment 5's slot"
    );
    let last4 = (2048 - 4) * u64::from(BLOCK);
    assert_eq!(
        read_at(pool.path(), slot_of(2) + last4, 4 * BLOCK as usize),
        pattern(3, 3 * 2048 - 4, 4, BLOCK),
        "the first half of the crossing write sits in segment 2's slot"
    );
    assert_eq!(
        read_at(pool.path(), slot_of(3), 4 * BLOCK as usize),
        pattern(3, 3 * 2048, 4, BLOCK),
        "the second half sits in segment 3's slot"
    );
    rig.plane.shutdown();
}

fn mirror(legs: Vec<Layout>) -> Layout {
    Layout::Mirror {
        id: 9,
        read_policy: ReadPolicy::RoundRobin,
        legs: legs
            .into_iter()
            .map(|layout| MirrorLeg {
                layout,
                health: LegHealth::Healthy,
            })
            .collect(),
    }
}

#[test]
fn mirror_writes_reach_every_leg_and_reads_survive_a_lost_leg() {
    let files: Vec<SparseFile> = (0..2).map(|_| SparseFile::create(4 * MIB)).collect();
    let devices = files.iter().map(|f| open_device(f.path())).collect();
    let layout = mirror(vec![linear(0, 0, 4 * MIB), linear(1, 0, 4 * MIB)]);
    let mut rig = Rig::start(devices, layout);
    let writes: Vec<(u64, u32)> = (0..16).map(|i| (i * 512, 64)).collect();
    let first = writes.clone();
    rig.drive(move |addr| write_then_read(addr, &first, 11));
    let whole = 4 * MIB as usize;
    assert_eq!(
        read_at(files[0].path(), 0, whole),
        read_at(files[1].path(), 0, whole),
        "both legs hold the same bytes"
    );
    // Leg 1 loses its data: every read sent to it ends early and is retried on leg 0.
    File::options()
        .write(true)
        .open(files[1].path())
        .and_then(|f| f.set_len(0))
        .expect("truncate leg 1");
    let again = writes.clone();
    let read = rig.drive(move |addr| {
        let mut client = BlockClient::connect(addr, IQN, 0).expect("login");
        again
            .iter()
            .map(|&(lba, blocks)| (lba, client.read(lba, blocks).expect("read")))
            .collect::<Vec<_>>()
    });
    for (lba, data) in &read {
        assert_eq!(data, &pattern(11, *lba, 64, BLOCK), "read at {lba}");
    }
    assert_eq!(
        rig.leg_failures.first(),
        Some(&(9, 1, false)),
        "the failed read was reported against leg 1"
    );
    let Layout::Mirror { legs, .. } = &rig.layout else {
        unreachable!()
    };
    assert_eq!(legs[1].health, LegHealth::Faulty);
    rig.plane.shutdown();
}

#[test]
fn mirror_write_failing_on_one_leg_completes_on_the_others() {
    let good = SparseFile::create(4 * MIB);
    let devices = vec![open_device(good.path()), failing_writes_device(4 * MIB)];
    let layout = mirror(vec![linear(0, 0, 4 * MIB), linear(1, 0, 4 * MIB)]);
    let mut rig = Rig::start(devices, layout);
    let writes = [(0, 64), (4096, 128)];
    let read = rig.drive(move |addr| write_then_read(addr, &writes, 5));
    for (lba, data) in &read {
        let blocks = (data.len() / BLOCK as usize) as u32;
        assert_eq!(data, &pattern(5, *lba, blocks, BLOCK), "read at {lba}");
        assert_eq!(
            read_at(good.path(), lba * u64::from(BLOCK), data.len()),
            *data,
            "the healthy leg has the data"
        );
    }
    assert_eq!(
        rig.leg_failures,
        vec![(9, 1, true)],
        "the leg was reported once, as a write failure, and taken out"
    );
    // From then on every write was logged before it was issued, region by region.
    assert_eq!(
        rig.logged,
        vec![(0, 64 * 512), (4096 * 512, 128 * 512)],
        "each write asked for its regions once"
    );
    let dirty = rig.dirty.as_ref().expect("dirty regions");
    assert_eq!(
        dirty.marked().collect::<Vec<_>>(),
        vec![0, 8],
        "exactly the written regions are dirty"
    );
    // A write to a region already marked goes straight through.
    rig.drive(|addr| {
        let mut client = BlockClient::connect(addr, IQN, 0).expect("login");
        client
            .write(64, &pattern(6, 64, 64, BLOCK), true)
            .expect("write")
    });
    assert_eq!(rig.logged.len(), 2, "no new mark needed");
    rig.plane.shutdown();
}

#[test]
fn a_mirror_with_no_leg_left_fails_the_write_with_a_medium_error() {
    let devices = vec![failing_writes_device(MIB), failing_writes_device(MIB)];
    let layout = mirror(vec![linear(0, 0, MIB), linear(1, 0, MIB)]);
    let mut rig = Rig::start(devices, layout);
    let outcome = rig.drive(|addr| {
        let mut client = BlockClient::connect(addr, IQN, 0).expect("login");
        client.write(0, &pattern(1, 0, 8, BLOCK), false)
    });
    let error = outcome.expect_err("no leg can take the write");
    assert!(
        format!("{error:?}").contains("sense"),
        "a CHECK CONDITION with sense: {error:?}"
    );
    assert_eq!(
        rig.leg_failures.len(),
        2,
        "both legs were taken out in turn"
    );
    rig.plane.shutdown();
}
