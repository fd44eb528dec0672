//! Mirror read balancing: the [`LegChooser`] the planner asks which leg a read goes to, the
//! [`LegSet`] of candidates it offers, and two choosers: [`FirstReadable`] (deterministic, for
//! host-side resolution and tests) and [`ReadBalancer`] (round-robin and least-outstanding, the
//! per-reactor state a reactor keeps for each volume).

use std::fmt;

use crate::layout::{NodeId, ReadPolicy, MAX_MIRROR_LEGS};
use crate::step::LegRef;

/// A set of mirror leg indices (below [`MAX_MIRROR_LEGS`]).
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct LegSet {
    bits: u32,
}

impl LegSet {
    pub const EMPTY: LegSet = LegSet { bits: 0 };

    /// Legs `0..count` (count capped at [`MAX_MIRROR_LEGS`]).
    pub fn first_n(count: usize) -> LegSet {
        let bits = match count {
            0 => 0,
            n if n >= MAX_MIRROR_LEGS => u32::MAX,
            n => (1u32 << n) - 1,
        };
        LegSet { bits }
    }

    pub fn single(leg: u32) -> LegSet {
        LegSet::EMPTY.with(leg)
    }

    /// The set with `leg` added; legs beyond the maximum are ignored.
    pub fn with(self, leg: u32) -> LegSet {
        LegSet {
            bits: self.bits | 1u32.checked_shl(leg).unwrap_or(0),
        }
    }

    pub fn without(self, leg: u32) -> LegSet {
        LegSet {
            bits: self.bits & !1u32.checked_shl(leg).unwrap_or(0),
        }
    }

    pub fn contains(self, leg: u32) -> bool {
        self.bits & 1u32.checked_shl(leg).unwrap_or(0) != 0
    }

    pub fn is_empty(self) -> bool {
        self.bits == 0
    }

    pub fn len(self) -> u32 {
        self.bits.count_ones()
    }

    /// The lowest leg in the set.
    pub fn first(self) -> Option<u32> {
        (!self.is_empty()).then(|| self.bits.trailing_zeros())
    }

    /// The first leg at or after `leg` in the set, wrapping around to the lowest.
    pub fn next_from(self, leg: u32) -> Option<u32> {
        let at_or_after = self.bits & u32::MAX.checked_shl(leg).unwrap_or(0);
        match at_or_after {
            0 => self.first(),
            bits => Some(bits.trailing_zeros()),
        }
    }

    /// The legs in ascending order.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        let mut bits = self.bits;
        std::iter::from_fn(move || {
            let leg = (bits != 0).then(|| bits.trailing_zeros())?;
            bits &= bits - 1;
            Some(leg)
        })
    }
}

impl fmt::Debug for LegSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Chooses the leg a mirror read goes to. The planner calls it once per mirror piece of a read
/// with the legs that can serve the piece (never empty); an answer outside `candidates` is
/// replaced by the lowest candidate.
pub trait LegChooser {
    fn choose_leg(&mut self, mirror: NodeId, policy: ReadPolicy, candidates: LegSet) -> u32;
}

/// Always the lowest candidate leg, whatever the policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct FirstReadable;

impl LegChooser for FirstReadable {
    fn choose_leg(&mut self, _mirror: NodeId, _policy: ReadPolicy, candidates: LegSet) -> u32 {
        candidates.first().unwrap_or(0)
    }
}

/// Per-volume read balancing state of one reactor: a round-robin position and the reads in
/// flight on each leg of each mirror node of the volume (node ids are unique within a volume,
/// so keep one balancer per volume). Tell it about reads with [`ReadBalancer::read_issued`] and
/// [`ReadBalancer::read_completed`] (the `mirror_leg` of each Device step). It allocates only
/// the first time it sees a mirror node.
#[derive(Debug, Clone, Default)]
pub struct ReadBalancer {
    mirrors: Vec<MirrorLoad>,
}

#[derive(Debug, Clone)]
struct MirrorLoad {
    id: NodeId,
    /// Where the next round-robin search starts.
    next_leg: u32,
    reads_in_flight: [u32; MAX_MIRROR_LEGS],
}

impl ReadBalancer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A read was submitted to `leg`.
    pub fn read_issued(&mut self, leg: LegRef) {
        if let Some(count) = self
            .load_mut(leg.mirror)
            .reads_in_flight
            .get_mut(leg.leg as usize)
        {
            *count = count.saturating_add(1);
        }
    }

    /// A read on `leg` completed (successfully or not).
    pub fn read_completed(&mut self, leg: LegRef) {
        if let Some(count) = self
            .load_mut(leg.mirror)
            .reads_in_flight
            .get_mut(leg.leg as usize)
        {
            *count = count.saturating_sub(1);
        }
    }

    pub fn reads_in_flight(&self, leg: LegRef) -> u32 {
        self.mirrors
            .iter()
            .find(|load| load.id == leg.mirror)
            .and_then(|load| load.reads_in_flight.get(leg.leg as usize))
            .copied()
            .unwrap_or(0)
    }

    /// Drop the state of mirror nodes for which `keep` is false (nodes gone from the volume).
    pub fn retain(&mut self, mut keep: impl FnMut(NodeId) -> bool) {
        self.mirrors.retain(|load| keep(load.id));
    }

    fn load_mut(&mut self, id: NodeId) -> &mut MirrorLoad {
        let at = match self.mirrors.iter().position(|load| load.id == id) {
            Some(at) => at,
            None => {
                self.mirrors.push(MirrorLoad {
                    id,
                    next_leg: 0,
                    reads_in_flight: [0; MAX_MIRROR_LEGS],
                });
                self.mirrors.len() - 1
            }
        };
        &mut self.mirrors[at]
    }
}

impl LegChooser for ReadBalancer {
    fn choose_leg(&mut self, mirror: NodeId, policy: ReadPolicy, candidates: LegSet) -> u32 {
        let load = self.load_mut(mirror);
        let start = load.next_leg;
        let chosen = match policy {
            ReadPolicy::RoundRobin => candidates.next_from(start),
            ReadPolicy::LeastOutstanding => {
                // Fewest reads in flight; among equals, the first from the round-robin position.
                let fewest = candidates
                    .iter()
                    .map(|leg| load.reads_in_flight[leg as usize])
                    .min();
                let tied = candidates
                    .iter()
                    .filter(|&leg| Some(load.reads_in_flight[leg as usize]) == fewest)
                    .fold(LegSet::EMPTY, LegSet::with);
                tied.next_from(start)
            }
        };
        let chosen = chosen.unwrap_or(0);
        load.next_leg = (chosen + 1) % MAX_MIRROR_LEGS as u32;
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(mirror: NodeId, leg: u32) -> LegRef {
        LegRef { mirror, leg }
    }

    #[test]
    fn leg_sets_add_remove_and_wrap() {
        let set = LegSet::EMPTY.with(1).with(4).with(40);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![1, 4]);
        assert_eq!(set.len(), 2);
        assert_eq!(set.next_from(2), Some(4));
        assert_eq!(set.next_from(5), Some(1));
        assert_eq!(set.next_from(99), Some(1));
        assert_eq!(set.without(1).first(), Some(4));
        assert!(!set.contains(40));
        assert_eq!(LegSet::first_n(3).iter().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(LegSet::first_n(99).len(), 32);
        assert_eq!(LegSet::EMPTY.next_from(0), None);
    }

    #[test]
    fn round_robin_cycles_over_candidates_only() {
        let mut balancer = ReadBalancer::new();
        let candidates = LegSet::EMPTY.with(0).with(2).with(3);
        let picks: Vec<u32> = (0..6)
            .map(|_| balancer.choose_leg(7, ReadPolicy::RoundRobin, candidates))
            .collect();
        assert_eq!(picks, vec![0, 2, 3, 0, 2, 3]);
        // Another mirror has its own position.
        assert_eq!(
            balancer.choose_leg(8, ReadPolicy::RoundRobin, candidates),
            0
        );
    }

    #[test]
    fn least_outstanding_prefers_idle_legs_and_rotates_ties() {
        let mut balancer = ReadBalancer::new();
        let both = LegSet::first_n(2);
        balancer.read_issued(leg(1, 0));
        balancer.read_issued(leg(1, 0));
        assert_eq!(
            balancer.choose_leg(1, ReadPolicy::LeastOutstanding, both),
            1
        );
        balancer.read_issued(leg(1, 1));
        balancer.read_issued(leg(1, 1));
        balancer.read_issued(leg(1, 1));
        assert_eq!(
            balancer.choose_leg(1, ReadPolicy::LeastOutstanding, both),
            0
        );
        balancer.read_completed(leg(1, 1));
        assert_eq!(balancer.reads_in_flight(leg(1, 1)), 2);
        // Tied at 2: alternate.
        let first = balancer.choose_leg(1, ReadPolicy::LeastOutstanding, both);
        let second = balancer.choose_leg(1, ReadPolicy::LeastOutstanding, both);
        assert_ne!(first, second);
        // Only candidates are chosen, however idle the others are.
        assert_eq!(
            balancer.choose_leg(1, ReadPolicy::LeastOutstanding, LegSet::single(0)),
            0
        );
    }

    #[test]
    fn completions_never_underflow_and_retain_forgets() {
        let mut balancer = ReadBalancer::new();
        balancer.read_completed(leg(3, 1));
        assert_eq!(balancer.reads_in_flight(leg(3, 1)), 0);
        balancer.read_issued(leg(3, 99));
        balancer.read_issued(leg(3, 1));
        balancer.retain(|id| id != 3);
        assert_eq!(balancer.reads_in_flight(leg(3, 1)), 0);
    }
}
