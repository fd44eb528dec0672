//! The oracle the property tests compare the planner with: a naive byte-at-a-time walk of the
//! layout tree, written independently of the crate, and (in `arb`) the random layouts it is
//! checked on. One block is one byte, so every boundary case is reachable.

#![allow(dead_code)]

mod arb;

pub use arb::{all_legs, arb_direct_layout, arb_layout, with_request};

use lunar_volume::{
    FaultReason, Layout, LegHealth, LegRef, PlanOutcome, PlanStep, SegmentEntry, SegmentRef,
    SegmentTable,
};

/// What happens to one byte of a request, as plain numbers so that outcomes sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Device {
        device: u32,
        offset: u64,
        leg: Option<(u32, u32)>,
    },
    Zero,
    Error {
        leg: Option<(u32, u32)>,
    },
    Fault {
        node: u32,
        index: u64,
        reason: u8,
    },
}

fn leg_pair(leg: Option<LegRef>) -> Option<(u32, u32)> {
    leg.map(|leg| (leg.mirror, leg.leg))
}

pub fn fault_outcome(segment: SegmentRef, reason: FaultReason) -> Outcome {
    Outcome::Fault {
        node: segment.node,
        index: segment.index,
        reason: match reason {
            FaultReason::Invalid => 0,
            FaultReason::WriteToNoWrite => 1,
            FaultReason::WriteToZero => 2,
        },
    }
}

/// Size of a layout, computed independently of the crate.
pub fn size(layout: &Layout) -> u64 {
    match layout {
        Layout::Linear { size_bytes, .. } | Layout::Segmented { size_bytes, .. } => *size_bytes,
        Layout::Concat(members) => members.iter().map(size).sum(),
        Layout::Stripe {
            unit_bytes,
            members,
        } => {
            let smallest = members.iter().map(size).min().unwrap_or(0);
            (smallest / unit_bytes) * unit_bytes * members.len() as u64
        }
        Layout::Mirror { legs, .. } => size(&legs[0].layout),
    }
}

/// The member holding byte `at` and the byte's offset in it (concat and stripe only).
fn member_at(layout: &Layout, at: u64) -> (&Layout, u64) {
    match layout {
        Layout::Concat(members) => {
            let mut start = 0;
            for member in members {
                let member_size = size(member);
                if at < start + member_size {
                    return (member, at - start);
                }
                start += member_size;
            }
            panic!("byte {at} beyond concat");
        }
        Layout::Stripe {
            unit_bytes,
            members,
        } => {
            let unit = at / unit_bytes;
            let member = (unit % members.len() as u64) as usize;
            let row = unit / members.len() as u64;
            (&members[member], row * unit_bytes + at % unit_bytes)
        }
        _ => unreachable!("not a concat or stripe"),
    }
}

fn segment_at(
    id: u32,
    segment_bytes: u64,
    entries: &SegmentTable,
    at: u64,
) -> (SegmentRef, SegmentEntry, u64) {
    let index = at / segment_bytes;
    let entry = entries.get(index).expect("entry for every segment");
    (SegmentRef { node: id, index }, entry, at % segment_bytes)
}

fn readable(health: LegHealth, at: u64) -> bool {
    match health {
        LegHealth::Healthy => true,
        LegHealth::Faulty => false,
        LegHealth::Resyncing { up_to_bytes } => at < up_to_bytes,
    }
}

/// What a read of byte `at` gives when every mirror reads its lowest usable leg, skipping
/// `excluded` legs. `enclosing` is the innermost mirror leg above `layout`.
pub fn read(
    layout: &Layout,
    at: u64,
    enclosing: Option<(u32, u32)>,
    excluded: &[LegRef],
) -> Outcome {
    match layout {
        Layout::Linear {
            device,
            offset_bytes,
            ..
        } => Outcome::Device {
            device: *device,
            offset: offset_bytes + at,
            leg: enclosing,
        },
        Layout::Concat(_) | Layout::Stripe { .. } => {
            let (member, member_at) = member_at(layout, at);
            read(member, member_at, enclosing, excluded)
        }
        Layout::Segmented {
            id,
            segment_bytes,
            entries,
            ..
        } => {
            let (segment, entry, within) = segment_at(*id, *segment_bytes, entries, at);
            match entry {
                SegmentEntry::Mapped(location) | SegmentEntry::NoWrite(location) => {
                    Outcome::Device {
                        device: location.device,
                        offset: location.offset_bytes + within,
                        leg: enclosing,
                    }
                }
                SegmentEntry::Zero => Outcome::Zero,
                SegmentEntry::Invalid => fault_outcome(segment, FaultReason::Invalid),
                SegmentEntry::Error => Outcome::Error { leg: enclosing },
            }
        }
        Layout::Mirror { id, legs, .. } => {
            let usable = legs.iter().enumerate().find(|(index, leg)| {
                readable(leg.health, at)
                    && !excluded.contains(&LegRef {
                        mirror: *id,
                        leg: *index as u32,
                    })
            });
            match usable {
                Some((index, leg)) => read(&leg.layout, at, Some((*id, index as u32)), excluded),
                None => Outcome::Error { leg: enclosing },
            }
        }
    }
}

/// Every outcome a read of byte `at` may have, whichever usable legs the mirrors pick.
pub fn read_choices(layout: &Layout, at: u64, enclosing: Option<(u32, u32)>) -> Vec<Outcome> {
    match layout {
        Layout::Concat(_) | Layout::Stripe { .. } => {
            let (member, member_at) = member_at(layout, at);
            read_choices(member, member_at, enclosing)
        }
        Layout::Mirror { id, legs, .. } => {
            let choices: Vec<Outcome> = legs
                .iter()
                .enumerate()
                .filter(|(_, leg)| readable(leg.health, at))
                .flat_map(|(index, leg)| read_choices(&leg.layout, at, Some((*id, index as u32))))
                .collect();
            match choices.is_empty() {
                true => vec![Outcome::Error { leg: enclosing }],
                false => choices,
            }
        }
        _ => vec![read(layout, at, enclosing, &[])],
    }
}

/// Everything a write of byte `at` does: one outcome per writable mirror leg.
pub fn write(layout: &Layout, at: u64, enclosing: Option<(u32, u32)>) -> Vec<Outcome> {
    match layout {
        Layout::Linear { .. } => vec![read(layout, at, enclosing, &[])],
        Layout::Concat(_) | Layout::Stripe { .. } => {
            let (member, member_at) = member_at(layout, at);
            write(member, member_at, enclosing)
        }
        Layout::Segmented {
            id,
            segment_bytes,
            entries,
            ..
        } => {
            let (segment, entry, within) = segment_at(*id, *segment_bytes, entries, at);
            vec![match entry {
                SegmentEntry::Mapped(location) => Outcome::Device {
                    device: location.device,
                    offset: location.offset_bytes + within,
                    leg: enclosing,
                },
                SegmentEntry::NoWrite(_) => fault_outcome(segment, FaultReason::WriteToNoWrite),
                SegmentEntry::Zero => fault_outcome(segment, FaultReason::WriteToZero),
                SegmentEntry::Invalid => fault_outcome(segment, FaultReason::Invalid),
                SegmentEntry::Error => Outcome::Error { leg: enclosing },
            }]
        }
        Layout::Mirror { id, legs, .. } => {
            let outcomes: Vec<Outcome> = legs
                .iter()
                .enumerate()
                .filter(|(_, leg)| leg.health != LegHealth::Faulty)
                .flat_map(|(index, leg)| write(&leg.layout, at, Some((*id, index as u32))))
                .collect();
            match outcomes.is_empty() {
                true => vec![Outcome::Error { leg: enclosing }],
                false => outcomes,
            }
        }
    }
}

/// A segment a byte lies in: (table node, segment index, offset in the segment, mirror leg).
pub type SegmentHit = (u32, u64, u64, Option<(u32, u32)>);

/// Every segment byte `at` lies in, on every mirror leg.
pub fn segments(
    layout: &Layout,
    at: u64,
    enclosing: Option<(u32, u32)>,
    out: &mut Vec<SegmentHit>,
) {
    match layout {
        Layout::Linear { .. } => {}
        Layout::Concat(_) | Layout::Stripe { .. } => {
            let (member, member_at) = member_at(layout, at);
            segments(member, member_at, enclosing, out)
        }
        Layout::Segmented {
            id,
            segment_bytes,
            entries,
            ..
        } => {
            let (segment, _, within) = segment_at(*id, *segment_bytes, entries, at);
            out.push((segment.node, segment.index, within, enclosing));
        }
        Layout::Mirror { id, legs, .. } => {
            for (index, leg) in legs.iter().enumerate() {
                segments(&leg.layout, at, Some((*id, index as u32)), out);
            }
        }
    }
}

/// Every device byte the volume uses: all legs, located segments, stripe tails excluded.
pub fn device_bytes(layout: &Layout) -> Vec<(u32, u64)> {
    let mut bytes = Vec::new();
    for at in 0..size(layout) {
        collect_device_bytes(layout, at, &mut bytes);
    }
    bytes.sort_unstable();
    bytes.dedup();
    bytes
}

fn collect_device_bytes(layout: &Layout, at: u64, out: &mut Vec<(u32, u64)>) {
    match layout {
        Layout::Linear {
            device,
            offset_bytes,
            ..
        } => out.push((*device, offset_bytes + at)),
        Layout::Concat(_) | Layout::Stripe { .. } => {
            let (member, member_at) = member_at(layout, at);
            collect_device_bytes(member, member_at, out)
        }
        Layout::Segmented {
            id,
            segment_bytes,
            entries,
            ..
        } => {
            let (_, entry, within) = segment_at(*id, *segment_bytes, entries, at);
            if let Some(location) = entry.location() {
                out.push((location.device, location.offset_bytes + within));
            }
        }
        Layout::Mirror { legs, .. } => {
            for leg in legs {
                collect_device_bytes(&leg.layout, at, out);
            }
        }
    }
}

/// The per-byte outcomes of a Ready plan: `outcomes[i]` lists what the steps do to byte `i`.
pub fn outcomes_of(steps: &[PlanStep], len: u64) -> Vec<Vec<Outcome>> {
    let mut outcomes = vec![Vec::new(); len as usize];
    for step in steps {
        match *step {
            PlanStep::Device {
                device,
                device_offset_bytes,
                len_bytes,
                request_offset_bytes,
                mirror_leg,
            } => {
                assert!(len_bytes > 0, "empty step {step:?}");
                for i in 0..len_bytes {
                    outcomes[(request_offset_bytes + i) as usize].push(Outcome::Device {
                        device,
                        offset: device_offset_bytes + i,
                        leg: leg_pair(mirror_leg),
                    });
                }
            }
            PlanStep::Zero {
                request_offset_bytes,
                len_bytes,
            } => {
                assert!(len_bytes > 0, "empty step {step:?}");
                for i in 0..len_bytes {
                    outcomes[(request_offset_bytes + i) as usize].push(Outcome::Zero);
                }
            }
            PlanStep::Error {
                request_offset_bytes,
                len_bytes,
                mirror_leg,
            } => {
                assert!(len_bytes > 0, "empty step {step:?}");
                for i in 0..len_bytes {
                    outcomes[(request_offset_bytes + i) as usize].push(Outcome::Error {
                        leg: leg_pair(mirror_leg),
                    });
                }
            }
            PlanStep::Fault { .. } => panic!("fault in a ready plan: {step:?}"),
        }
    }
    outcomes
}

/// The faults of a Faulted plan, in plan order; panics on any other step.
pub fn faults_of(steps: &[PlanStep]) -> Vec<Outcome> {
    steps
        .iter()
        .map(|step| match *step {
            PlanStep::Fault { segment, reason } => fault_outcome(segment, reason),
            other => panic!("non-fault step in a faulted plan: {other:?}"),
        })
        .collect()
}

/// Whether the outcome is a fault.
pub fn is_fault(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Fault { .. })
}

/// Check a plan's outcome and steps against the oracle's per-byte outcomes (`expected[i]`
/// sorted); returns an error message on mismatch.
pub fn compare(
    outcome: PlanOutcome,
    steps: &[PlanStep],
    expected: &[Vec<Outcome>],
) -> Result<(), String> {
    let mut expected_faults: Vec<Outcome> = expected
        .iter()
        .flatten()
        .filter(|o| is_fault(o))
        .copied()
        .collect();
    expected_faults.sort_unstable();
    expected_faults.dedup();
    match outcome {
        PlanOutcome::Faulted => {
            let faults = faults_of(steps);
            let mut unique = faults.clone();
            unique.sort_unstable();
            unique.dedup();
            if unique.len() != faults.len() {
                return Err(format!("repeated faults {faults:?}"));
            }
            if unique != expected_faults {
                return Err(format!("faults {unique:?}, oracle {expected_faults:?}"));
            }
        }
        PlanOutcome::Ready => {
            if !expected_faults.is_empty() {
                return Err(format!("ready, but the oracle faults {expected_faults:?}"));
            }
            for (byte, mut got) in outcomes_of(steps, expected.len() as u64)
                .into_iter()
                .enumerate()
            {
                got.sort_unstable();
                if got != expected[byte] {
                    return Err(format!(
                        "byte {byte}: plan {got:?}, oracle {:?}",
                        expected[byte]
                    ));
                }
            }
        }
    }
    Ok(())
}
