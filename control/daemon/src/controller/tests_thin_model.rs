//! Random sequences of thin operations checked against a model: writes (thin allocation and
//! copy-on-write), deallocations, snapshots, clones, deletions, and commands pinning old
//! generations, on a pool smaller than the volumes can grow to (so it fills up). After every
//! step the pool ledgers equal the ones rebuilt from the tables (so a
//! restart gives the same references), no writable slot is shared, a new slot never was
//! referenced, and every volume reads back what the model says its blocks hold.

use std::collections::HashMap;

use lunar_api::volume::{VolumeCloneCreateParams, VolumeDeleteParams, VolumeSnapshotCreateParams};
use lunar_volume::SegmentEntry;
use lunar_wire::scsi::status;
use proptest::prelude::*;

use super::tests::add_device;
use super::tests_thin::*;
use super::*;
use crate::testing::{controller, FakePlane};

const SEGMENT: u64 = 8192;
const SEGMENTS: u64 = 8;
const BLOCK: u64 = 512;
const BLOCKS_PER_SEGMENT: usize = (SEGMENT / BLOCK) as usize;
/// 6 volumes of 8 segments need more than the pool's 32 slots.
const MAX_VOLUMES: usize = 6;

#[derive(Debug, Clone)]
enum Op {
    /// Write a tag into segment `segment` of volume `volume` (an index among the live volumes,
    /// modulo their number): its first block only, or all.
    Write {
        volume: usize,
        segment: u64,
        whole: bool,
    },
    /// Deallocate blocks 2 and 3 of a segment, or all of it.
    Unmap {
        volume: usize,
        segment: u64,
        whole: bool,
    },
    Snapshot {
        volume: usize,
    },
    Clone {
        volume: usize,
    },
    Delete {
        volume: usize,
    },
    /// A command on the current generation stays in flight (or completes).
    Pin(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..MAX_VOLUMES, 0..SEGMENTS, any::<bool>())
            .prop_map(|(volume, segment, whole)| Op::Write { volume, segment, whole }),
        2 => (0..MAX_VOLUMES, 0..SEGMENTS, any::<bool>())
            .prop_map(|(volume, segment, whole)| Op::Unmap { volume, segment, whole }),
        2 => (0..MAX_VOLUMES).prop_map(|volume| Op::Snapshot { volume }),
        1 => (0..MAX_VOLUMES).prop_map(|volume| Op::Clone { volume }),
        1 => (0..MAX_VOLUMES).prop_map(|volume| Op::Delete { volume }),
        1 => any::<bool>().prop_map(Op::Pin),
    ]
}

/// What each block of each segment of a volume holds: 0 for zeros, else the tag written.
type Blocks = Vec<[u8; BLOCKS_PER_SEGMENT]>;

struct World {
    c: Controller,
    plane: FakePlane,
    /// Live volumes in creation order: name, snapshot or not, model.
    volumes: Vec<(String, bool, Blocks)>,
    next_name: u32,
    next_tag: u8,
    seq: u64,
}

impl World {
    fn new() -> World {
        let (mut c, plane, _) = controller();
        add_device(&mut c, "small", "/dev/pool256k");
        create_pool(&mut c, "p", &["small"], Some(SEGMENT)).expect("pool");
        create_thin(&mut c, "v0", "p", SEGMENT * SEGMENTS).expect("thin");
        c.set_drain_timeout(std::time::Duration::from_millis(2));
        World {
            c,
            plane,
            volumes: vec![(
                "v0".into(),
                false,
                vec![[0; BLOCKS_PER_SEGMENT]; SEGMENTS as usize],
            )],
            next_name: 1,
            next_tag: 1,
            seq: 0,
        }
    }

    fn uid(&self, name: &str) -> u64 {
        self.c.config().volume(name).expect("volume").uid.0
    }

    fn name(&mut self) -> String {
        self.next_name += 1;
        format!("v{}", self.next_name)
    }

    /// Serve `request` until it is answered, letting pinned commands complete when it waits.
    fn answer(&mut self, request: lunar_reactor::ReactorRequest) -> lunar_scsi::ScsiReply {
        let mut answers = serve(&mut self.c, &self.plane, vec![request]);
        while answers.is_empty() {
            self.plane.state().in_flight_on = None;
            answers = serve(&mut self.c, &self.plane, Vec::new());
        }
        answers.remove(0).1
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let live = self.volumes.len();
        let op = match *op {
            Op::Write {
                volume,
                segment,
                whole,
            } => Op::Write {
                volume: volume % live,
                segment,
                whole,
            },
            Op::Unmap {
                volume,
                segment,
                whole,
            } => Op::Unmap {
                volume: volume % live,
                segment,
                whole,
            },
            Op::Snapshot { volume } => Op::Snapshot {
                volume: volume % live,
            },
            Op::Clone { volume } => Op::Clone {
                volume: volume % live,
            },
            Op::Delete { volume } => Op::Delete {
                volume: volume % live,
            },
            Op::Pin(pinned) => Op::Pin(pinned),
        };
        match op {
            Op::Write {
                volume,
                segment,
                whole,
            } => {
                let Some((name, snapshot, _)) = self.volumes.get(volume).cloned() else {
                    return Ok(());
                };
                let uid = self.uid(&name);
                let offset = segment * SEGMENT;
                let len = if whole { SEGMENT } else { BLOCK };
                let refs_before = self.c.ledgers().references();
                let before = entry(&self.c, &name, segment);
                self.seq += 1;
                let generation = self.c.generation();
                let reply = self.answer(fault(
                    self.seq,
                    uid,
                    generation,
                    &[segment],
                    Some((offset, len)),
                ));
                if snapshot {
                    prop_assert_eq!(reply.status, status::CHECK_CONDITION);
                    return Ok(());
                }
                let after = entry(&self.c, &name, segment);
                let SegmentEntry::Mapped(at) = after else {
                    // Pool full, or told to plan again: nothing written.
                    return Ok(());
                };
                prop_assert_eq!(reply.status, status::GOOD);
                if before.location() != Some(at) {
                    prop_assert!(
                        !refs_before.get("p").is_some_and(|r| r.contains_key(&at)),
                        "slot {:?} handed out while referenced",
                        at
                    );
                }
                let tag = self.next_tag;
                self.next_tag = self.next_tag.wrapping_add(1).max(1);
                write_device(&self.c, "small", at.offset_bytes, &vec![tag; len as usize]);
                let blocks = &mut self.volumes[volume].2[segment as usize];
                for block in blocks.iter_mut().take((len / BLOCK) as usize) {
                    *block = tag;
                }
            }
            Op::Unmap {
                volume,
                segment,
                whole,
            } => {
                let Some((name, snapshot, _)) = self.volumes.get(volume).cloned() else {
                    return Ok(());
                };
                let uid = self.uid(&name);
                let range = if whole {
                    (segment * SEGMENT, SEGMENT)
                } else {
                    (segment * SEGMENT + 2 * BLOCK, 2 * BLOCK)
                };
                self.seq += 1;
                let generation = self.c.generation();
                let reply = self.answer(deallocate(self.seq, uid, generation, &[range]));
                if snapshot || reply.status != status::GOOD {
                    return Ok(());
                }
                let blocks = &mut self.volumes[volume].2[segment as usize];
                let span = if whole { 0..BLOCKS_PER_SEGMENT } else { 2..4 };
                for block in &mut blocks[span] {
                    *block = 0;
                }
            }
            Op::Snapshot { volume } => {
                let Some((origin, _, model)) = self.volumes.get(volume).cloned() else {
                    return Ok(());
                };
                if self.volumes.len() >= MAX_VOLUMES {
                    return Ok(());
                }
                let name = self.name();
                let taken = self.c.volume_snapshot_create(VolumeSnapshotCreateParams {
                    volume: origin,
                    name: name.clone(),
                });
                // While a pinned command is in flight the drain times out: no snapshot.
                if taken.is_ok() {
                    self.volumes.push((name, true, model));
                } else {
                    prop_assert!(self.c.config().volume(&name).is_none());
                }
            }
            Op::Clone { volume } => {
                let Some((source, snapshot, model)) = self.volumes.get(volume).cloned() else {
                    return Ok(());
                };
                if !snapshot || self.volumes.len() >= MAX_VOLUMES {
                    return Ok(());
                }
                let name = self.name();
                self.c
                    .volume_clone_create(VolumeCloneCreateParams {
                        snapshot: source,
                        name: name.clone(),
                    })
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                self.volumes.push((name, false, model));
            }
            Op::Delete { volume } => {
                if volume >= self.volumes.len() || self.volumes.len() == 1 {
                    return Ok(());
                }
                let name = self.volumes[volume].0.clone();
                // The deletion is committed even when the drain after it times out.
                let _ = self
                    .c
                    .volume_delete(VolumeDeleteParams { name: name.clone() });
                prop_assert!(self.c.config().volume(&name).is_none());
                self.volumes.remove(volume);
            }
            Op::Pin(pinned) => {
                self.plane.state().in_flight_on = pinned.then(|| self.c.generation());
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        self.c
            .ledgers()
            .check_invariants()
            .map_err(TestCaseError::fail)?;
        let rebuilt = self
            .c
            .rederived_ledgers()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(rebuilt.references(), self.c.ledgers().references());
        for (name, _, model) in &self.volumes {
            for (index, blocks) in model.iter().enumerate() {
                let bytes = match entry(&self.c, name, index as u64).location() {
                    Some(at) => read_device(&self.c, "small", at.offset_bytes, SEGMENT as usize),
                    None => vec![0; SEGMENT as usize],
                };
                for (block, expected) in blocks.iter().enumerate() {
                    let start = block * BLOCK as usize;
                    let actual = &bytes[start..start + BLOCK as usize];
                    prop_assert!(
                        actual.iter().all(|b| b == expected),
                        "volume {} segment {} block {}: expected {:#x}, found {:#x}",
                        name,
                        index,
                        block,
                        expected,
                        actual[0]
                    );
                }
            }
        }
        let mut counted: HashMap<lunar_volume::Location, u32> = HashMap::new();
        for (name, _, _) in &self.volumes {
            let (_, table) = self
                .c
                .config()
                .volume(name)
                .and_then(|v| v.layout.thin_node(NODE))
                .expect("thin");
            for (_, location, _) in table.located() {
                *counted.entry(location).or_default() += 1;
            }
        }
        let refs = self.c.ledgers().references();
        let held = refs.get("p").cloned().unwrap_or_default();
        prop_assert_eq!(counted, held);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn thin_operations_keep_references_and_data_consistent(ops in proptest::collection::vec(op(), 1..40)) {
        let mut world = World::new();
        for op in &ops {
            world.step(op)?;
            world.check()?;
        }
    }
}
