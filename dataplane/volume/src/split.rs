//! `split`: the one place a request is cut at member boundaries. Each layout node only maps one
//! in-bounds piece to one member (`Concat::piece`, `Stripe::piece`); `split` walks the pieces of
//! a request and recurses into the members until each piece lands on a `Linear` leaf.

use crate::layout::Extent;
use crate::node::{Node, Piece};

/// Where planned extents go: the caller's `Vec`, appended to in request order.
pub(crate) struct Sink<'a> {
    out: &'a mut Vec<Extent>,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(out: &'a mut Vec<Extent>) -> Self {
        Sink { out }
    }

    fn push(&mut self, extent: Extent) {
        debug_assert!(extent.len_bytes > 0);
        self.out.push(extent);
    }
}

/// Plan `[offset_bytes, offset_bytes + len_bytes)` of `node`, a non-empty range inside the node,
/// whose first byte is at `request_offset_bytes` in the request's buffer. Recursion depth is the
/// tree's depth, bounded by validation.
pub(crate) fn split(
    node: &Node,
    offset_bytes: u64,
    len_bytes: u64,
    request_offset_bytes: u64,
    sink: &mut Sink<'_>,
) {
    debug_assert!(len_bytes > 0 && offset_bytes + len_bytes <= node.size_bytes());
    match node {
        Node::Linear(linear) => sink.push(Extent {
            device: linear.device,
            device_offset_bytes: linear.offset_bytes + offset_bytes,
            len_bytes,
            request_offset_bytes,
        }),
        Node::Concat(concat) => cut(
            offset_bytes,
            len_bytes,
            request_offset_bytes,
            sink,
            |at_bytes| concat.piece(at_bytes),
        ),
        Node::Stripe(stripe) => cut(
            offset_bytes,
            len_bytes,
            request_offset_bytes,
            sink,
            |at_bytes| stripe.piece(at_bytes),
        ),
    }
}

/// Cut the range into pieces that each stay inside one member, and plan each in its member.
fn cut<'n>(
    offset_bytes: u64,
    len_bytes: u64,
    request_offset_bytes: u64,
    sink: &mut Sink<'_>,
    piece_at: impl Fn(u64) -> Piece<'n>,
) {
    let mut done_bytes = 0;
    while done_bytes < len_bytes {
        let piece = piece_at(offset_bytes + done_bytes);
        let piece_bytes = piece.until_boundary_bytes.min(len_bytes - done_bytes);
        split(
            piece.member,
            piece.member_offset_bytes,
            piece_bytes,
            request_offset_bytes + done_bytes,
            sink,
        );
        done_bytes += piece_bytes;
    }
}
