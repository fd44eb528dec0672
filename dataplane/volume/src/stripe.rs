//! Stripe: fixed-size units dealt round-robin over the members. Owns the arithmetic from a
//! volume byte to (member, offset in member); the per-member used size is precomputed.

use crate::node::{Node, Piece};
use crate::validate::stripe_used_per_member_bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stripe {
    unit_bytes: u64,
    /// Bytes used on every member: the smallest member's size in whole units.
    used_per_member_bytes: u64,
    members: Box<[Node]>,
}

impl Stripe {
    /// Build from a non-zero unit and compiled members, each at least one unit (validated).
    pub(crate) fn new(unit_bytes: u64, members: Vec<Node>) -> Stripe {
        let smallest_bytes = members.iter().map(Node::size_bytes).min().unwrap_or(0);
        Stripe {
            unit_bytes,
            used_per_member_bytes: stripe_used_per_member_bytes(smallest_bytes, unit_bytes.max(1)),
            members: members.into_boxed_slice(),
        }
    }

    fn width(&self) -> u64 {
        self.members.len() as u64
    }

    pub(crate) fn unit_bytes(&self) -> u64 {
        self.unit_bytes
    }

    pub(crate) fn members(&self) -> &[Node] {
        &self.members
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.used_per_member_bytes.saturating_mul(self.width())
    }

    /// The member holding byte `offset_bytes`, which must be below `size_bytes()`; the piece
    /// runs to the end of the stripe unit.
    pub(crate) fn piece(&self, offset_bytes: u64) -> Piece<'_> {
        debug_assert!(offset_bytes < self.size_bytes());
        let unit_index = offset_bytes / self.unit_bytes;
        let within_unit_bytes = offset_bytes % self.unit_bytes;
        let member_index = unit_index % self.width();
        let row = unit_index / self.width();
        Piece {
            // The index is below the width, which came from a `usize`.
            member: &self.members[member_index as usize],
            member_offset_bytes: row * self.unit_bytes + within_unit_bytes,
            until_boundary_bytes: self.unit_bytes - within_unit_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Linear;

    fn leaf(device: u32, size_bytes: u64) -> Node {
        Node::Linear(Linear {
            device,
            offset_bytes: 0,
            size_bytes,
        })
    }

    #[test]
    fn units_go_round_robin_and_rows_stack() {
        // Three members, unit 4: volume units 0,1,2 are row 0 of members 0,1,2; unit 3 is row 1
        // of member 0.
        let stripe = Stripe::new(4, vec![leaf(0, 8), leaf(1, 9), leaf(2, 12)]);
        assert_eq!(stripe.size_bytes(), 24);
        let cases = [
            (0, 0, 0, 4),
            (5, 1, 1, 3),
            (11, 2, 3, 1),
            (12, 0, 4, 4),
            (23, 2, 7, 1),
        ];
        for (offset, device, member_offset, until_boundary) in cases {
            let piece = stripe.piece(offset);
            let Node::Linear(linear) = piece.member else {
                panic!("leaf expected");
            };
            assert_eq!(linear.device, device, "offset {offset}");
            assert_eq!(piece.member_offset_bytes, member_offset, "offset {offset}");
            assert_eq!(
                piece.until_boundary_bytes, until_boundary,
                "offset {offset}"
            );
        }
    }
}
