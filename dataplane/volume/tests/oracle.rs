//! Block-by-block oracle: random layouts of every kind (stripes of mirrors, concats of
//! stripes, segment tables in random states, mirror legs in random health) and random requests,
//! planned by the crate, must read, write and fault exactly where the naive byte-at-a-time walk
//! of `model` says.

mod model;

use lunar_volume::{
    FirstReadable, IoOp, LegChooser, LegRef, LegSet, NodeId, PlanError, PlanOutcome, PlanStep,
    ReadPolicy, VolumeMap,
};
use model::{arb_direct_layout, arb_layout, with_request, Outcome};
use proptest::prelude::*;

fn plan_steps(
    map: &VolumeMap,
    op: IoOp,
    offset: u64,
    len: u64,
    excluded: &[LegRef],
) -> (PlanOutcome, Vec<PlanStep>) {
    let mut out = Vec::new();
    let outcome = match (op, excluded.is_empty()) {
        (_, true) => map.plan_io(op, offset, len, &mut FirstReadable, &mut out),
        (IoOp::Read, false) => {
            map.plan_read_retry(offset, len, excluded, &mut FirstReadable, &mut out)
        }
        (IoOp::Write, false) => unreachable!("writes exclude no leg"),
    }
    .expect("request is inside the volume");
    (outcome, out)
}

/// Picks legs from a seed, sometimes answering a leg that is not a candidate.
struct SeededChooser(u64);

impl LegChooser for SeededChooser {
    fn choose_leg(&mut self, _mirror: NodeId, _policy: ReadPolicy, candidates: LegSet) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
        let pick = (self.0 >> 33) as u32;
        match pick % 5 {
            0 => 31,
            _ => candidates
                .iter()
                .nth((pick / 5) as usize % candidates.len() as usize)
                .unwrap(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn size_matches_oracle(layout in arb_layout()) {
        let map = VolumeMap::try_new(layout.clone()).unwrap();
        prop_assert_eq!(map.size_bytes, model::size(&layout));
        prop_assert_eq!(layout.validate(), Ok(map.size_bytes));
    }

    #[test]
    fn reads_match_oracle(
        (layout, offset, len) in with_request(arb_layout()),
        exclusion_mask in any::<u32>(),
    ) {
        let map = VolumeMap::try_new(layout.clone()).unwrap();
        let mut legs = Vec::new();
        model::all_legs(&layout, &mut legs);
        let excluded: Vec<LegRef> = legs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| exclusion_mask & (1 << (i % 32)) != 0 && exclusion_mask % 3 == 0)
            .map(|(_, leg)| leg)
            .collect();
        let (outcome, steps) = plan_steps(&map, IoOp::Read, offset, len, &excluded);
        let expected: Vec<Vec<Outcome>> = (0..len)
            .map(|i| vec![model::read(&layout, offset + i, None, &excluded)])
            .collect();
        if let Err(message) = model::compare(outcome, &steps, &expected) {
            prop_assert!(false, "{}\nsteps {:?}", message, steps);
        }
        if outcome == PlanOutcome::Ready {
            // A read covers the request once, in request order.
            let mut next = 0;
            for step in &steps {
                let (start, step_len) = step.request_range().unwrap();
                prop_assert_eq!(start, next);
                next += step_len;
            }
            prop_assert_eq!(next, len);
        }
    }

    #[test]
    fn writes_match_oracle((layout, offset, len) in with_request(arb_layout())) {
        let map = VolumeMap::try_new(layout.clone()).unwrap();
        let (outcome, steps) = plan_steps(&map, IoOp::Write, offset, len, &[]);
        let expected: Vec<Vec<Outcome>> = (0..len)
            .map(|i| {
                let mut outcomes = model::write(&layout, offset + i, None);
                outcomes.sort_unstable();
                outcomes
            })
            .collect();
        if let Err(message) = model::compare(outcome, &steps, &expected) {
            prop_assert!(false, "{}\nsteps {:?}", message, steps);
        }
    }

    #[test]
    fn any_chooser_reads_only_usable_legs(
        (layout, offset, len) in with_request(arb_layout()),
        seed in any::<u64>(),
    ) {
        let map = VolumeMap::try_new(layout.clone()).unwrap();
        let mut out = Vec::new();
        let outcome = map.plan_io(IoOp::Read, offset, len, &mut SeededChooser(seed), &mut out).unwrap();
        if outcome == PlanOutcome::Ready {
            for (i, got) in model::outcomes_of(&out, len).into_iter().enumerate() {
                prop_assert_eq!(got.len(), 1, "byte {} read {:?} times", i, got);
                let choices = model::read_choices(&layout, offset + i as u64, None);
                prop_assert!(choices.contains(&got[0]), "byte {}: {:?} not in {:?}", i, got[0], choices);
            }
        } else {
            for fault in model::faults_of(&out) {
                let possible = (0..len).any(|i| model::read_choices(&layout, offset + i, None).contains(&fault));
                prop_assert!(possible, "fault {:?} on no usable leg", fault);
            }
        }
    }

    #[test]
    fn segments_in_matches_oracle((layout, offset, len) in with_request(arb_layout())) {
        let map = VolumeMap::try_new(layout.clone()).unwrap();
        let mut pieces = Vec::new();
        map.segments_in(offset, len, &mut pieces).unwrap();
        let mut got = vec![Vec::new(); len as usize];
        for piece in &pieces {
            prop_assert!(piece.len_bytes > 0);
            let entry = map.root.find(piece.segment.node).and_then(|node| match node {
                lunar_volume::Layout::Segmented { entries, .. } => entries.get(piece.segment.index),
                _ => None,
            });
            prop_assert_eq!(entry, Some(piece.entry));
            for i in 0..piece.len_bytes {
                got[(piece.request_offset_bytes + i) as usize].push((
                    piece.segment.node,
                    piece.segment.index,
                    piece.segment_offset_bytes + i,
                    piece.mirror_leg.map(|leg| (leg.mirror, leg.leg)),
                ));
            }
        }
        for (i, mut got) in got.into_iter().enumerate() {
            let mut expected = Vec::new();
            model::segments(&layout, offset + i as u64, None, &mut expected);
            got.sort_unstable();
            expected.sort_unstable();
            prop_assert_eq!(got, expected, "byte {}", i);
        }
    }

    #[test]
    fn devices_used_matches_oracle(layout in arb_layout()) {
        let map = VolumeMap::try_new(layout.clone()).unwrap();
        let ranges = map.devices_used();
        let mut bytes = Vec::new();
        for pair in ranges.windows(2) {
            // Sorted, and merged where they touch.
            prop_assert!(pair[0].device < pair[1].device || pair[0].end_bytes() < pair[1].offset_bytes);
        }
        for range in &ranges {
            prop_assert!(range.len_bytes > 0);
            prop_assert!(map.devices().contains(&range.device));
            bytes.extend((range.offset_bytes..range.end_bytes()).map(|offset| (range.device, offset)));
        }
        prop_assert_eq!(bytes, model::device_bytes(&layout));
    }

    #[test]
    fn plan_io_is_deterministic_and_appends(
        (layout, offset, len) in with_request(arb_layout()),
        write in any::<bool>(),
    ) {
        let map = VolumeMap::try_new(layout).unwrap();
        let op = if write { IoOp::Write } else { IoOp::Read };
        let (first_outcome, first) = plan_steps(&map, op, offset, len, &[]);
        let sentinel = PlanStep::Zero { request_offset_bytes: 7, len_bytes: 7 };
        let mut out = vec![sentinel];
        let outcome = map.plan_io(op, offset, len, &mut FirstReadable, &mut out).unwrap();
        prop_assert_eq!(outcome, first_outcome);
        prop_assert_eq!(out[0], sentinel);
        prop_assert_eq!(&out[1..], &first[..]);
    }

    #[test]
    fn requests_beyond_the_end_are_refused(layout in arb_layout(), past in 1u64..10, len in 0u64..10) {
        let map = VolumeMap::try_new(layout).unwrap();
        let offset = map.size_bytes + past - 1;
        let len = if offset == map.size_bytes { len.max(1) } else { len };
        let refused = Err(PlanError::OutOfRange { offset_bytes: offset, len_bytes: len, size_bytes: map.size_bytes });
        let mut out = Vec::new();
        prop_assert_eq!(map.plan_io(IoOp::Write, offset, len, &mut FirstReadable, &mut out), refused);
        prop_assert_eq!(map.plan_io(IoOp::Read, offset, len, &mut FirstReadable, &mut out), refused);
        prop_assert!(out.is_empty());
    }

    #[test]
    fn plan_and_plan_io_agree_on_direct_maps((layout, offset, len) in with_request(arb_direct_layout())) {
        let map = VolumeMap::try_new(layout).unwrap();
        prop_assert!(map.is_direct());
        let mut extents = Vec::new();
        map.plan(offset, len, &mut extents).unwrap();
        let mut next = 0;
        for extent in &extents {
            prop_assert!(extent.len_bytes > 0);
            prop_assert_eq!(extent.request_offset_bytes, next);
            next += extent.len_bytes;
        }
        prop_assert_eq!(next, len);
        let extent_bytes: Vec<Vec<Outcome>> = model::outcomes_of(
            &extents.iter().map(|extent| PlanStep::Device {
                device: extent.device,
                device_offset_bytes: extent.device_offset_bytes,
                len_bytes: extent.len_bytes,
                request_offset_bytes: extent.request_offset_bytes,
                mirror_leg: None,
            }).collect::<Vec<_>>(),
            len,
        );
        for op in [IoOp::Read, IoOp::Write] {
            let (outcome, steps) = plan_steps(&map, op, offset, len, &[]);
            prop_assert_eq!(outcome, PlanOutcome::Ready);
            prop_assert!(steps.len() <= extents.len());
            prop_assert_eq!(&model::outcomes_of(&steps, len), &extent_bytes);
        }
    }

    #[test]
    fn plan_refuses_maps_that_are_not_direct((layout, offset, len) in with_request(arb_layout())) {
        let map = VolumeMap::try_new(layout).unwrap();
        let mut extents = Vec::new();
        let planned = map.plan(offset, len, &mut extents);
        match (map.is_direct(), len) {
            (true, _) | (false, 0) => prop_assert!(planned.is_ok()),
            (false, _) => {
                prop_assert_eq!(planned, Err(PlanError::OutOfRange { offset_bytes: offset, len_bytes: len, size_bytes: 0 }));
                prop_assert!(extents.is_empty());
            }
        }
    }
}
