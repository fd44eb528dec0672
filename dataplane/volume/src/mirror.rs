//! Mirror: the same bytes on every leg. Owns which legs may serve a read of a range and which
//! take writes (from each leg's health), and where reads are cut so that a resyncing leg can
//! serve the part of a read below its resync point.

use crate::chooser::LegSet;
use crate::layout::{LegHealth, NodeId, ReadPolicy};
use crate::node::Node;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mirror {
    pub(crate) id: NodeId,
    pub(crate) read_policy: ReadPolicy,
    size_bytes: u64,
    legs: Box<[MirrorLegNode]>,
    /// The legs that take writes: Healthy and Resyncing.
    writable: LegSet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MirrorLegNode {
    pub(crate) node: Node,
    pub(crate) health: LegHealth,
}

impl Mirror {
    /// Build from legs of equal size, at most `MAX_MIRROR_LEGS` of them (validated).
    pub(crate) fn new(id: NodeId, read_policy: ReadPolicy, legs: Vec<MirrorLegNode>) -> Mirror {
        let size_bytes = legs.first().map_or(0, |leg| leg.node.size_bytes());
        let writable = legs
            .iter()
            .enumerate()
            .filter(|(_, leg)| leg.health.can_write())
            .fold(LegSet::EMPTY, |set, (index, _)| set.with(index as u32));
        Mirror {
            id,
            read_policy,
            size_bytes,
            legs: legs.into_boxed_slice(),
            writable,
        }
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub(crate) fn legs(&self) -> &[MirrorLegNode] {
        &self.legs
    }

    pub(crate) fn leg(&self, index: u32) -> Option<&MirrorLegNode> {
        self.legs.get(index as usize)
    }

    pub(crate) fn all_legs(&self) -> LegSet {
        LegSet::first_n(self.legs.len())
    }

    pub(crate) fn writable_legs(&self) -> LegSet {
        self.writable
    }

    /// The legs that can serve a read of `[offset_bytes, offset_bytes + len_bytes)`.
    pub(crate) fn readable_legs(&self, offset_bytes: u64, len_bytes: u64) -> LegSet {
        let end_bytes = offset_bytes.saturating_add(len_bytes);
        self.legs
            .iter()
            .enumerate()
            .filter(|(_, leg)| leg.health.can_read(end_bytes))
            .fold(LegSet::EMPTY, |set, (index, _)| set.with(index as u32))
    }

    /// Bytes from `offset_bytes` (below the size) to the next resync point above it, or to the
    /// end: reads are cut there, so each read piece is wholly below or above every resync
    /// point.
    pub(crate) fn read_piece_bytes(&self, offset_bytes: u64) -> u64 {
        self.legs
            .iter()
            .filter_map(|leg| match leg.health {
                LegHealth::Resyncing { up_to_bytes } if up_to_bytes > offset_bytes => {
                    Some(up_to_bytes)
                }
                _ => None,
            })
            .fold(self.size_bytes, u64::min)
            .saturating_sub(offset_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Linear;

    fn leg(device: u32, health: LegHealth) -> MirrorLegNode {
        MirrorLegNode {
            node: Node::Linear(Linear {
                device,
                offset_bytes: 0,
                size_bytes: 100,
            }),
            health,
        }
    }

    #[test]
    fn health_decides_readers_writers_and_read_cuts() {
        let mirror = Mirror::new(
            1,
            ReadPolicy::RoundRobin,
            vec![
                leg(0, LegHealth::Healthy),
                leg(1, LegHealth::Faulty),
                leg(2, LegHealth::Resyncing { up_to_bytes: 40 }),
                leg(3, LegHealth::Resyncing { up_to_bytes: 70 }),
            ],
        );
        assert_eq!(mirror.size_bytes(), 100);
        assert_eq!(mirror.writable_legs().iter().collect::<Vec<_>>(), [0, 2, 3]);
        assert_eq!(
            mirror.readable_legs(0, 40).iter().collect::<Vec<_>>(),
            [0, 2, 3]
        );
        assert_eq!(
            mirror.readable_legs(30, 11).iter().collect::<Vec<_>>(),
            [0, 3]
        );
        assert_eq!(mirror.readable_legs(70, 1).iter().collect::<Vec<_>>(), [0]);
        assert_eq!(mirror.read_piece_bytes(0), 40);
        assert_eq!(mirror.read_piece_bytes(40), 30);
        assert_eq!(mirror.read_piece_bytes(69), 1);
        assert_eq!(mirror.read_piece_bytes(70), 30);
    }
}
