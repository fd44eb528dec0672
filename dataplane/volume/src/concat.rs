//! Concat: members laid end to end. Owns the cumulative member ends that turn "which member
//! holds this byte" into a binary search.

use crate::node::{Node, Piece};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Concat {
    /// `ends_bytes[i]` is where member `i` ends in the concat's address space (exclusive).
    /// Strictly increasing: validated members are never empty.
    ends_bytes: Box<[u64]>,
    members: Box<[Node]>,
}

impl Concat {
    /// Build from compiled members whose sizes add up to at most 2^64 - 1 (validated).
    pub(crate) fn new(members: Vec<Node>) -> Concat {
        let mut end_bytes: u64 = 0;
        let ends_bytes = members
            .iter()
            .map(|member| {
                end_bytes = end_bytes.saturating_add(member.size_bytes());
                end_bytes
            })
            .collect();
        Concat {
            ends_bytes,
            members: members.into_boxed_slice(),
        }
    }

    pub(crate) fn members(&self) -> &[Node] {
        &self.members
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.ends_bytes.last().copied().unwrap_or(0)
    }

    /// The member holding byte `offset_bytes`, which must be below `size_bytes()`.
    pub(crate) fn piece(&self, offset_bytes: u64) -> Piece<'_> {
        debug_assert!(offset_bytes < self.size_bytes());
        let index = self.ends_bytes.partition_point(|&end| end <= offset_bytes);
        let start_bytes = match index {
            0 => 0,
            _ => self.ends_bytes[index - 1],
        };
        Piece {
            member: &self.members[index],
            member_offset_bytes: offset_bytes - start_bytes,
            until_boundary_bytes: self.ends_bytes[index] - offset_bytes,
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

    fn device_of(node: &Node) -> u32 {
        match node {
            Node::Linear(linear) => linear.device,
            _ => u32::MAX,
        }
    }

    #[test]
    fn piece_finds_member_and_distance_to_its_end() {
        let concat = Concat::new(vec![leaf(0, 10), leaf(1, 5), leaf(2, 1)]);
        assert_eq!(concat.size_bytes(), 16);
        let cases = [
            (0, 0, 0, 10),
            (9, 0, 9, 1),
            (10, 1, 0, 5),
            (14, 1, 4, 1),
            (15, 2, 0, 1),
        ];
        for (offset, device, member_offset, until_boundary) in cases {
            let piece = concat.piece(offset);
            assert_eq!(device_of(piece.member), device, "offset {offset}");
            assert_eq!(piece.member_offset_bytes, member_offset, "offset {offset}");
            assert_eq!(
                piece.until_boundary_bytes, until_boundary,
                "offset {offset}"
            );
        }
    }
}
