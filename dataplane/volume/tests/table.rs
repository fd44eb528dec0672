//! Segment tables: generations share untouched chunks, batched edits copy each chunk once,
//! counts and state iteration follow every change, huge thin tables cost almost nothing, and a
//! random sequence of edits always agrees with a plain `Vec` model.

use lunar_volume::{
    Location, SegmentEntry, SegmentIndexError, SegmentState, SegmentTable, CHUNK_ENTRIES,
};
use proptest::prelude::*;

const CHUNK: u64 = CHUNK_ENTRIES as u64;

fn mapped(device: u32, offset_bytes: u64) -> SegmentEntry {
    SegmentEntry::Mapped(Location {
        device,
        offset_bytes,
    })
}

#[test]
fn with_entry_copies_one_chunk_and_shares_the_rest() {
    let before = SegmentTable::all_zero(10 * CHUNK);
    let after = before.with_entry(3 * CHUNK + 5, mapped(1, 4096)).unwrap();
    assert_eq!(before.get(3 * CHUNK + 5), Some(SegmentEntry::Zero));
    assert_eq!(after.get(3 * CHUNK + 5), Some(mapped(1, 4096)));
    assert!(!after.shares_chunk_with(&before, 3 * CHUNK));
    for chunk in (0..10).filter(|&chunk| chunk != 3) {
        assert!(
            after.shares_chunk_with(&before, chunk * CHUNK),
            "chunk {chunk}"
        );
    }
    // The next generation shares the changed chunk with this one.
    let third = after.with_entry(7 * CHUNK, mapped(2, 0)).unwrap();
    assert!(third.shares_chunk_with(&after, 3 * CHUNK));
    assert!(!third.shares_chunk_with(&after, 7 * CHUNK));
}

#[test]
fn an_editor_copies_each_chunk_once_and_leaves_the_original_alone() {
    let before = SegmentTable::all_zero(4 * CHUNK);
    let mut editor = before.edit();
    for index in 0..CHUNK {
        editor.set(CHUNK + index, mapped(0, index * 512)).unwrap();
    }
    editor.set(3 * CHUNK, SegmentEntry::Error).unwrap();
    let after = editor.finish();
    assert_eq!(before, SegmentTable::all_zero(4 * CHUNK));
    assert_eq!(after.count(SegmentState::Mapped), CHUNK);
    assert_eq!(after.count(SegmentState::Error), 1);
    assert_eq!(after.count(SegmentState::Zero), 3 * CHUNK - 1);
    assert!(after.shares_chunk_with(&before, 0));
    assert!(after.shares_chunk_with(&before, 2 * CHUNK));
    // The zero table is one chunk and one branch; the edit added two chunks and a branch.
    assert_eq!(before.distinct_allocations(), 2);
    assert_eq!(after.distinct_allocations(), 4);
    // Setting an entry to what it holds copies nothing.
    let mut editor = after.edit();
    editor.set(CHUNK + 1, mapped(0, 512)).unwrap();
    let same = editor.finish();
    assert!(same.shares_chunk_with(&after, CHUNK));
}

#[test]
fn out_of_range_edits_are_refused_without_change() {
    let table = SegmentTable::all_zero(10);
    assert_eq!(
        table.with_entry(10, SegmentEntry::Error),
        Err(SegmentIndexError {
            index: 10,
            len_entries: 10
        })
    );
    let mut editor = table.edit();
    assert!(editor.set_range(5..11, SegmentEntry::Error).is_err());
    assert_eq!(editor.finish(), table);
    assert_eq!(table.get(10), None);
    assert_eq!(table.get(u64::MAX), None);
}

#[test]
fn a_64_tib_thin_table_is_a_handful_of_allocations() {
    // 64 TiB in 1 MiB segments: 2^26 entries, 1.5 GiB if stored flat.
    let len_entries = 1u64 << 26;
    let thin = SegmentTable::all_zero(len_entries);
    assert!(
        thin.distinct_allocations() <= 8,
        "{}",
        thin.distinct_allocations()
    );
    assert_eq!(thin.count(SegmentState::Zero), len_entries);
    assert_eq!(thin.get(len_entries - 1), Some(SegmentEntry::Zero));
    // Allocating a few segments copies a few paths.
    let mut editor = thin.edit();
    for (n, index) in [0, 12_345_678, len_entries - 1].into_iter().enumerate() {
        editor
            .set(index, mapped(n as u32, (n as u64) << 20))
            .unwrap();
    }
    let allocated = editor.finish();
    assert!(allocated.distinct_allocations() <= 8 + 3 * 5);
    assert_eq!(allocated.count(SegmentState::Mapped), 3);
    assert_eq!(
        allocated
            .in_state(SegmentState::Mapped)
            .map(|(index, _)| index)
            .collect::<Vec<_>>(),
        vec![0, 12_345_678, len_entries - 1]
    );
    assert_eq!(allocated.devices().collect::<Vec<_>>(), vec![0, 1, 2]);
}

#[test]
fn the_largest_table_is_usable_at_both_ends() {
    let table = SegmentTable::all_zero(u64::MAX);
    let edited = table
        .with_entry(u64::MAX - 1, SegmentEntry::Invalid)
        .unwrap()
        .with_entry(0, SegmentEntry::Error)
        .unwrap();
    assert_eq!(edited.get(u64::MAX - 1), Some(SegmentEntry::Invalid));
    assert_eq!(edited.get(0), Some(SegmentEntry::Error));
    assert_eq!(edited.count(SegmentState::Zero), u64::MAX - 2);
    assert_eq!(
        edited.in_state(SegmentState::Invalid).collect::<Vec<_>>(),
        vec![(u64::MAX - 1, SegmentEntry::Invalid)]
    );
    assert_ne!(edited, table);
}

#[test]
fn snapshot_marks_mapped_segments_no_write_and_keeps_locations() {
    let table = SegmentTable::from_entries(&[
        mapped(1, 0),
        SegmentEntry::Zero,
        mapped(2, 8),
        SegmentEntry::Error,
    ]);
    let shared = table.with_mapped_as_no_write();
    assert_eq!(
        shared.in_state(SegmentState::NoWrite).collect::<Vec<_>>(),
        vec![
            (
                0,
                SegmentEntry::NoWrite(Location {
                    device: 1,
                    offset_bytes: 0
                })
            ),
            (
                2,
                SegmentEntry::NoWrite(Location {
                    device: 2,
                    offset_bytes: 8
                })
            ),
        ]
    );
    assert_eq!(shared.count(SegmentState::Mapped), 0);
    assert_eq!(shared.devices().collect::<Vec<_>>(), vec![1, 2]);
}

#[test]
fn device_counts_follow_relocation_and_release() {
    let mut editor = SegmentTable::all_zero(3).edit();
    editor.set(0, mapped(5, 0)).unwrap();
    editor.set(1, mapped(5, 1)).unwrap();
    editor.set(2, mapped(9, 0)).unwrap();
    let table = editor.finish();
    assert_eq!(table.devices().collect::<Vec<_>>(), vec![5, 9]);
    let moved = table.with_entry(2, mapped(5, 2)).unwrap();
    assert_eq!(moved.devices().collect::<Vec<_>>(), vec![5]);
    let mut editor = moved.edit();
    editor.set_range(0..3, SegmentEntry::Zero).unwrap();
    assert_eq!(editor.finish().devices().count(), 0);
}

#[test]
fn entries_for_rounds_up_and_refuses_a_zero_segment() {
    assert_eq!(SegmentTable::entries_for(10, 4), Some(3));
    assert_eq!(SegmentTable::entries_for(12, 4), Some(3));
    assert_eq!(SegmentTable::entries_for(0, 4), Some(0));
    assert_eq!(SegmentTable::entries_for(u64::MAX, 1), Some(u64::MAX));
    assert_eq!(SegmentTable::entries_for(8, 0), None);
}

#[derive(Debug, Clone)]
enum Edit {
    Set(u64, SegmentEntry),
    SetRange(u64, u64, SegmentEntry),
    Commit,
}

fn arb_entry() -> impl Strategy<Value = SegmentEntry> {
    prop_oneof![
        (0u32..4, 0u64..1000).prop_map(|(device, offset)| mapped(device, offset)),
        (0u32..4, 0u64..1000).prop_map(|(device, offset_bytes)| SegmentEntry::NoWrite(Location {
            device,
            offset_bytes
        })),
        Just(SegmentEntry::Zero),
        Just(SegmentEntry::Invalid),
        Just(SegmentEntry::Error),
    ]
}

fn arb_edit(len: u64) -> impl Strategy<Value = Edit> {
    // Some indices past the end, to check refusals.
    let index = 0..len + 3;
    prop_oneof![
        4 => (index.clone(), arb_entry()).prop_map(|(i, e)| Edit::Set(i, e)),
        1 => (index.clone(), 0u64..600, arb_entry()).prop_map(|(i, n, e)| Edit::SetRange(i, n, e)),
        1 => Just(Edit::Commit),
    ]
}

fn arb_table_and_edits() -> impl Strategy<Value = (u64, SegmentEntry, Vec<Edit>)> {
    prop_oneof![4 => 1u64..40, 4 => 200u64..700, 1 => 16_000u64..17_000].prop_flat_map(|len| {
        (
            Just(len),
            arb_entry(),
            prop::collection::vec(arb_edit(len), 0..60),
        )
    })
}

fn check_against(table: &SegmentTable, model: &[SegmentEntry]) -> Result<(), TestCaseError> {
    prop_assert_eq!(table.len(), model.len() as u64);
    for (index, entry) in model.iter().enumerate() {
        prop_assert_eq!(table.get(index as u64), Some(*entry), "entry {}", index);
    }
    prop_assert_eq!(table.get(model.len() as u64), None);
    for state in SegmentState::ALL {
        let expected: Vec<(u64, SegmentEntry)> = model
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.state() == state)
            .map(|(index, entry)| (index as u64, *entry))
            .collect();
        prop_assert_eq!(table.count(state), expected.len() as u64);
        prop_assert_eq!(table.in_state(state).collect::<Vec<_>>(), expected);
    }
    let mut devices: Vec<u32> = model
        .iter()
        .filter_map(|entry| entry.location().map(|l| l.device))
        .collect();
    devices.sort_unstable();
    devices.dedup();
    prop_assert_eq!(table.devices().collect::<Vec<_>>(), devices);
    prop_assert_eq!(table, &SegmentTable::from_entries(model));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn edits_agree_with_a_vec_model((len, fill, edits) in arb_table_and_edits()) {
        let mut model = vec![fill; len as usize];
        let mut committed = SegmentTable::filled(len, fill);
        let mut committed_model = model.clone();
        let mut editor = committed.edit();
        for edit in edits {
            match edit {
                Edit::Set(index, entry) => {
                    let result = editor.set(index, entry);
                    match model.get_mut(index as usize) {
                        Some(slot) => {
                            prop_assert_eq!(result, Ok(*slot));
                            *slot = entry;
                        }
                        None => prop_assert!(result.is_err()),
                    }
                }
                Edit::SetRange(start, count, entry) => {
                    let end = start + count;
                    let result = editor.set_range(start..end, entry);
                    if end <= len || count == 0 {
                        prop_assert_eq!(result, Ok(()));
                        for slot in &mut model[start.min(len) as usize..end.min(len) as usize] {
                            *slot = entry;
                        }
                    } else {
                        prop_assert!(result.is_err());
                    }
                }
                Edit::Commit => {
                    let next = editor.finish();
                    // The previous generation is unchanged by building the next one.
                    check_against(&committed, &committed_model)?;
                    committed = next;
                    committed_model = model.clone();
                    editor = committed.edit();
                }
            }
        }
        check_against(&editor.finish(), &model)?;
        check_against(&committed, &committed_model)?;
    }
}
