//! `split`: the one place a request is cut: at concat member ends, stripe units, segment
//! boundaries and, for reads, mirror resync points. Each layout node only maps one in-bounds
//! piece to one member (`Concat::piece`, `Stripe::piece`, `Segmented::spot`); `split` walks the
//! pieces of a request and recurses into the members, and into the legs a mirror piece goes
//! to, until each piece lands on a device range or a segment. What happens there is the
//! [`Visitor`]'s business (planning a read or a write, extents, finding segments).

use crate::chooser::LegSet;
use crate::layout::DeviceId;
use crate::mirror::Mirror;
use crate::node::Node;
use crate::segmented::{SegmentSpot, Segmented};
use crate::step::LegRef;

/// Where a piece sits: its offset in the request's buffer and the innermost mirror leg above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reach {
    pub(crate) request_offset_bytes: u64,
    pub(crate) mirror_leg: Option<LegRef>,
}

impl Reach {
    pub(crate) fn request_start() -> Reach {
        Reach {
            request_offset_bytes: 0,
            mirror_leg: None,
        }
    }

    fn advanced(self, by_bytes: u64) -> Reach {
        Reach {
            request_offset_bytes: self.request_offset_bytes + by_bytes,
            ..self
        }
    }
}

/// What a walk does with the pieces `split` cuts a request into.
pub(crate) trait Visitor {
    /// Whether mirror pieces are cut at resync points (reads: so that each piece is wholly
    /// below or above each point, and a resyncing leg serves what is below).
    fn cuts_at_resync_points(&self) -> bool;
    /// A non-empty piece on a device.
    fn device(&mut self, device: DeviceId, device_offset_bytes: u64, len_bytes: u64, at: Reach);
    /// A non-empty piece inside one segment.
    fn segment(&mut self, segmented: &Segmented, spot: SegmentSpot, len_bytes: u64, at: Reach);
    /// The legs of `mirror` a piece of it goes to; an empty set calls [`Visitor::no_leg`].
    fn legs(&mut self, mirror: &Mirror, offset_bytes: u64, len_bytes: u64) -> LegSet;
    /// A mirror piece with no leg to go to.
    fn no_leg(&mut self, len_bytes: u64, at: Reach);
}

/// Walk `[offset_bytes, offset_bytes + len_bytes)` of `node`, a non-empty range inside the node.
/// Recursion depth is the tree's depth, bounded by validation.
pub(crate) fn split<V: Visitor>(
    node: &Node,
    offset_bytes: u64,
    len_bytes: u64,
    at: Reach,
    visitor: &mut V,
) {
    debug_assert!(len_bytes > 0 && offset_bytes + len_bytes <= node.size_bytes());
    match node {
        Node::Linear(linear) => {
            visitor.device(
                linear.device,
                linear.offset_bytes + offset_bytes,
                len_bytes,
                at,
            );
        }
        Node::Concat(concat) => cut(offset_bytes, len_bytes, |piece_at, left, done| {
            let piece = concat.piece(piece_at);
            let bytes = piece.until_boundary_bytes.min(left);
            let member_at = at.advanced(done);
            split(
                piece.member,
                piece.member_offset_bytes,
                bytes,
                member_at,
                visitor,
            );
            bytes
        }),
        Node::Stripe(stripe) => cut(offset_bytes, len_bytes, |piece_at, left, done| {
            let piece = stripe.piece(piece_at);
            let bytes = piece.until_boundary_bytes.min(left);
            let member_at = at.advanced(done);
            split(
                piece.member,
                piece.member_offset_bytes,
                bytes,
                member_at,
                visitor,
            );
            bytes
        }),
        Node::Segmented(segmented) => cut(offset_bytes, len_bytes, |piece_at, left, done| {
            let spot = segmented.spot(piece_at);
            let bytes = spot.until_boundary_bytes.min(left);
            visitor.segment(segmented, spot, bytes, at.advanced(done));
            bytes
        }),
        Node::Mirror(mirror) if visitor.cuts_at_resync_points() => {
            cut(offset_bytes, len_bytes, |piece_at, left, done| {
                let bytes = mirror.read_piece_bytes(piece_at).min(left);
                mirror_piece(mirror, piece_at, bytes, at.advanced(done), visitor);
                bytes
            })
        }
        Node::Mirror(mirror) => mirror_piece(mirror, offset_bytes, len_bytes, at, visitor),
    }
}

/// Cut `[offset_bytes, offset_bytes + len_bytes)` into pieces: `piece(at, left, done)` handles
/// the piece starting at `at` (with `left` bytes of the range from there, `done` before it)
/// and returns its length, which ends at the node's next boundary or at the range end.
fn cut(offset_bytes: u64, len_bytes: u64, mut piece: impl FnMut(u64, u64, u64) -> u64) {
    let mut done_bytes = 0;
    while done_bytes < len_bytes {
        let piece_bytes = piece(
            offset_bytes + done_bytes,
            len_bytes - done_bytes,
            done_bytes,
        );
        if piece_bytes == 0 {
            // Unreachable for a range inside the node: every piece holds at least one byte.
            debug_assert!(false, "empty piece");
            break;
        }
        done_bytes += piece_bytes;
    }
}

/// Send one mirror piece down every leg the visitor picks.
fn mirror_piece<V: Visitor>(
    mirror: &Mirror,
    offset_bytes: u64,
    len_bytes: u64,
    at: Reach,
    visitor: &mut V,
) {
    let legs = visitor.legs(mirror, offset_bytes, len_bytes);
    if legs.is_empty() {
        visitor.no_leg(len_bytes, at);
        return;
    }
    for index in legs.iter() {
        if let Some(leg) = mirror.leg(index) {
            let leg_at = Reach {
                request_offset_bytes: at.request_offset_bytes,
                mirror_leg: Some(LegRef {
                    mirror: mirror.id,
                    leg: index,
                }),
            };
            split(&leg.node, offset_bytes, len_bytes, leg_at, visitor);
        }
    }
}
