//! What each session asks for: the access pattern (random or sequential, read, write or a mix),
//! the region of the LUN it works in, and, when data is verified, which version of its pattern
//! every I/O unit holds. One [`Generator`] per session; nothing is shared between sessions.

use crate::pdu::Direction;
use crate::scsi;
use crate::session::{Completion, Op, Outcome};
use crate::verify::{Check, VerifyMap};

/// The access pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    RandRead,
    RandWrite,
    SeqRead,
    SeqWrite,
    /// Random; `read_pct` of the I/Os are reads.
    RandRw {
        read_pct: u8,
    },
}

impl Pattern {
    /// fio's names: randread, randwrite, read, write, randrw.
    pub fn parse(name: &str, read_pct: u8) -> Option<Pattern> {
        Some(match name {
            "randread" => Pattern::RandRead,
            "randwrite" => Pattern::RandWrite,
            "read" => Pattern::SeqRead,
            "write" => Pattern::SeqWrite,
            "randrw" => Pattern::RandRw {
                read_pct: read_pct.min(100),
            },
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Pattern::RandRead => "randread",
            Pattern::RandWrite => "randwrite",
            Pattern::SeqRead => "read",
            Pattern::SeqWrite => "write",
            Pattern::RandRw { .. } => "randrw",
        }
    }

    fn is_random(self) -> bool {
        !matches!(self, Pattern::SeqRead | Pattern::SeqWrite)
    }
}

/// A fast, seedable generator (splitmix64): good enough to spread I/O, not for secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// A value in `0..bound` (`bound` > 0), by multiply-high.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// The splitmix64 finaliser.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The part of the LUN one session uses, in I/O units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// LBA of unit 0.
    pub first_lba: u64,
    pub units: u64,
}

/// The shape of every I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoShape {
    pub pattern: Pattern,
    pub io_bytes: u32,
    pub block_len_bytes: u32,
}

impl IoShape {
    fn blocks_per_io(&self) -> u32 {
        self.io_bytes / self.block_len_bytes.max(1)
    }
}

/// Hands out one session's I/Os and checks what comes back.
pub struct Generator {
    shape: IoShape,
    region: Region,
    rng: Rng,
    cursor: u64,
    verify: Option<VerifyMap>,
}

impl Generator {
    /// `start_unit` places a sequential cursor; `verify_seed` turns verification on.
    pub fn new(
        shape: IoShape,
        region: Region,
        seed: u64,
        start_unit: u64,
        verify_seed: Option<u64>,
    ) -> Generator {
        Generator {
            shape,
            region,
            rng: Rng::new(seed),
            cursor: start_unit % region.units.max(1),
            verify: verify_seed.map(|seed| VerifyMap::new(region.units, seed)),
        }
    }

    /// The next I/O, or `None` when verification has every unit in flight.
    pub fn next_op(&mut self) -> Option<Op> {
        if self.region.units == 0 {
            return None;
        }
        let direction = match self.shape.pattern {
            Pattern::RandRead | Pattern::SeqRead => Direction::Read,
            Pattern::RandWrite | Pattern::SeqWrite => Direction::Write,
            Pattern::RandRw { read_pct } => {
                if self.rng.below(100) < u64::from(read_pct) {
                    Direction::Read
                } else {
                    Direction::Write
                }
            }
        };
        let wanted = if self.shape.pattern.is_random() {
            self.rng.below(self.region.units)
        } else {
            let unit = self.cursor;
            self.cursor = (self.cursor + 1) % self.region.units;
            unit
        };
        let unit = match &mut self.verify {
            Some(map) => map.claim(wanted, direction == Direction::Write)?,
            None => wanted,
        };
        let lba = self.region.first_lba + unit * u64::from(self.shape.blocks_per_io());
        let blocks = self.shape.blocks_per_io();
        Some(Op {
            cdb: match direction {
                Direction::Write => scsi::write_16(lba, blocks),
                _ => scsi::read_16(lba, blocks),
            },
            direction,
            len_bytes: self.shape.io_bytes,
            user: unit,
        })
    }

    /// Fills a write's data: the unit's pattern when verifying, else leaves the buffer as is.
    pub fn fill(&self, op: &Op, buffer: &mut [u8]) {
        if let Some(map) = &self.verify {
            map.fill(op.user, buffer);
        }
    }

    /// Accounts a finished I/O and checks read data against the pattern last written.
    pub fn complete(&mut self, completion: &Completion, data: &[u8]) -> Check {
        let Some(map) = &mut self.verify else {
            return Check::Unchecked;
        };
        let good = completion.outcome == Outcome::Good;
        map.release(
            completion.op.user,
            completion.op.direction == Direction::Write,
            good,
            if completion.op.direction == Direction::Read && good {
                Some(data)
            } else {
                None
            },
        )
    }
}

/// Splits `total_units` of the LUN into `sessions` disjoint regions (for verification), or
/// gives every session the whole LUN.
pub fn regions(total_units: u64, sessions: usize, disjoint: bool, unit_blocks: u64) -> Vec<Region> {
    let sessions = sessions.max(1) as u64;
    (0..sessions)
        .map(|i| {
            if disjoint {
                let per = total_units / sessions;
                Region {
                    first_lba: i * per * unit_blocks,
                    units: per,
                }
            } else {
                Region {
                    first_lba: 0,
                    units: total_units,
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn shape(pattern: Pattern) -> IoShape {
        IoShape {
            pattern,
            io_bytes: 4096,
            block_len_bytes: 512,
        }
    }

    fn lba_of(op: &Op) -> u64 {
        u64::from_be_bytes(op.cdb[2..10].try_into().unwrap())
    }

    #[test]
    fn sequential_ops_walk_the_region_and_wrap() {
        let region = Region {
            first_lba: 800,
            units: 3,
        };
        let mut g = Generator::new(shape(Pattern::SeqRead), region, 1, 1, None);
        let lbas: Vec<u64> = (0..4).map(|_| lba_of(&g.next_op().unwrap())).collect();
        assert_eq!(lbas, vec![808, 816, 800, 808]);
        let op = g.next_op().unwrap();
        assert_eq!(op.direction, Direction::Read);
        assert_eq!(op.cdb[0], 0x88);
        assert_eq!(&op.cdb[10..14], &8u32.to_be_bytes());
    }

    #[test]
    fn random_ops_stay_in_the_region_and_spread() {
        let region = Region {
            first_lba: 64,
            units: 100,
        };
        let mut g = Generator::new(shape(Pattern::RandWrite), region, 7, 0, None);
        let mut seen = HashSet::new();
        for _ in 0..2000 {
            let op = g.next_op().unwrap();
            assert_eq!(op.direction, Direction::Write);
            let lba = lba_of(&op);
            assert!((64..64 + 800).contains(&lba) && (lba - 64).is_multiple_of(8));
            seen.insert(lba);
        }
        assert!(seen.len() > 90, "only {} distinct units", seen.len());
    }

    #[test]
    fn mixed_pattern_honours_the_read_share() {
        let region = Region {
            first_lba: 0,
            units: 1000,
        };
        let pattern = Pattern::parse("randrw", 70).unwrap();
        let mut g = Generator::new(shape(pattern), region, 3, 0, None);
        let reads = (0..10_000)
            .filter(|_| g.next_op().unwrap().direction == Direction::Read)
            .count();
        assert!((6500..7500).contains(&reads), "{reads} reads");
    }

    #[test]
    fn pattern_names_round_trip() {
        for name in ["randread", "randwrite", "read", "write", "randrw"] {
            assert_eq!(Pattern::parse(name, 50).unwrap().name(), name);
        }
        assert_eq!(Pattern::parse("trim", 50), None);
    }

    #[test]
    fn disjoint_regions_do_not_overlap() {
        let r = regions(10, 3, true, 8);
        assert_eq!(
            r,
            vec![
                Region {
                    first_lba: 0,
                    units: 3
                },
                Region {
                    first_lba: 24,
                    units: 3
                },
                Region {
                    first_lba: 48,
                    units: 3
                },
            ]
        );
        assert!(regions(10, 2, false, 8).iter().all(|r| r.units == 10));
    }

    #[test]
    fn rng_below_stays_below() {
        let mut rng = Rng::new(0);
        assert!((0..10_000).all(|_| rng.below(7) < 7));
        assert_eq!(Rng::new(0).below(1), 0);
    }
}
