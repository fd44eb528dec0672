//! [`ThinTable`]: the segment table of a thin node as the configuration holds it, and its
//! sparse form in the state file.
//!
//! In memory it is the data plane's [`SegmentTable`] itself (shared chunk by chunk between
//! generations, so publishing a change copies one chunk). In the state file only segments with a
//! location are written, as runs of consecutive segments at consecutive slots of one device in
//! one state: `{"segment_bytes", "segments", "runs": [{"index", "count", "device",
//! "offset_bytes", "no_write"?}]}`. A 1 TiB thin volume with nothing written is a few bytes;
//! one written sequentially is a few runs. Zero segments are the default; Invalid is a state the
//! control thread only publishes while it changes a segment and is never saved.

use lunar_volume::layout::DeviceId;
use lunar_volume::{Location, SegmentEntry, SegmentState, SegmentTable};
use serde::{Deserialize, Serialize};

/// Most segments with a location one table may hold in the state file (2^32: 4 PiB of 1 MiB
/// segments); bounds the work of loading a hostile file.
pub const MAX_LOCATED_SEGMENTS: u64 = 1 << 32;

/// A thin node's segment table, in segments of `segment_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinTable {
    pub segment_bytes: u64,
    pub entries: SegmentTable,
}

/// One run of the stored form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredRun {
    /// First segment of the run.
    index: u64,
    /// Segments in the run (at least 1).
    count: u64,
    /// Device of the first segment's slot; the others follow it on the same device.
    device: DeviceId,
    offset_bytes: u64,
    /// The run's segments are NoWrite (shared with a snapshot or clone, or were).
    #[serde(default, skip_serializing_if = "is_false")]
    no_write: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredTable {
    segment_bytes: u64,
    /// Length of the table.
    segments: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    runs: Vec<StoredRun>,
}

impl ThinTable {
    /// A table of `segments` Zero segments.
    pub fn all_zero(segment_bytes: u64, segments: u64) -> ThinTable {
        ThinTable {
            segment_bytes,
            entries: SegmentTable::all_zero(segments),
        }
    }

    /// Every segment with a location, ascending: `(index, location, no_write)`.
    pub fn located(&self) -> impl Iterator<Item = (u64, Location, bool)> + '_ {
        let mut mapped = self.entries.in_state(SegmentState::Mapped).peekable();
        let mut shared = self.entries.in_state(SegmentState::NoWrite).peekable();
        std::iter::from_fn(move || {
            let take_mapped = match (mapped.peek(), shared.peek()) {
                (Some((a, _)), Some((b, _))) => a < b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            let (index, entry) = if take_mapped {
                mapped.next()?
            } else {
                shared.next()?
            };
            let location = entry.location()?;
            Some((index, location, !take_mapped))
        })
    }

    /// Segments with a location (Mapped or NoWrite).
    pub fn located_count(&self) -> u64 {
        self.entries.count(SegmentState::Mapped) + self.entries.count(SegmentState::NoWrite)
    }

    fn to_stored(&self) -> StoredTable {
        let mut runs: Vec<StoredRun> = Vec::new();
        for (index, location, no_write) in self.located() {
            if let Some(last) = runs.last_mut() {
                let continues = last.index + last.count == index
                    && last.device == location.device
                    && last.no_write == no_write
                    && last
                        .count
                        .checked_mul(self.segment_bytes)
                        .and_then(|bytes| last.offset_bytes.checked_add(bytes))
                        == Some(location.offset_bytes);
                if continues {
                    last.count += 1;
                    continue;
                }
            }
            runs.push(StoredRun {
                index,
                count: 1,
                device: location.device,
                offset_bytes: location.offset_bytes,
                no_write,
            });
        }
        StoredTable {
            segment_bytes: self.segment_bytes,
            segments: self.entries.len(),
            runs,
        }
    }

    fn from_stored(stored: StoredTable) -> Result<ThinTable, String> {
        if stored.segment_bytes == 0 {
            return Err("segment_bytes is 0".to_string());
        }
        let mut editor = SegmentTable::all_zero(stored.segments).edit();
        let mut next_free_index: u64 = 0;
        let mut located: u64 = 0;
        for run in &stored.runs {
            let at = format!("run at segment {}", run.index);
            if run.count == 0 {
                return Err(format!("{at} is empty"));
            }
            if run.index < next_free_index {
                return Err(format!("{at} overlaps or precedes the run before it"));
            }
            let end = run
                .index
                .checked_add(run.count)
                .filter(|&end| end <= stored.segments)
                .ok_or_else(|| {
                    format!("{at} goes beyond the table's {} segments", stored.segments)
                })?;
            located = located.saturating_add(run.count);
            if located > MAX_LOCATED_SEGMENTS {
                return Err(format!(
                    "more than {MAX_LOCATED_SEGMENTS} segments have a location"
                ));
            }
            (run.count - 1)
                .checked_mul(stored.segment_bytes)
                .and_then(|bytes| run.offset_bytes.checked_add(bytes))
                .and_then(|last| last.checked_add(stored.segment_bytes))
                .ok_or_else(|| format!("{at}: device offsets overflow"))?;
            for (step, index) in (run.index..end).enumerate() {
                let location = Location {
                    device: run.device,
                    offset_bytes: run.offset_bytes + step as u64 * stored.segment_bytes,
                };
                let entry = if run.no_write {
                    SegmentEntry::NoWrite(location)
                } else {
                    SegmentEntry::Mapped(location)
                };
                editor.set(index, entry).map_err(|e| e.to_string())?;
            }
            next_free_index = end;
        }
        Ok(ThinTable {
            segment_bytes: stored.segment_bytes,
            entries: editor.finish(),
        })
    }
}

impl Serialize for ThinTable {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_stored().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ThinTable {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = StoredTable::deserialize(deserializer)?;
        ThinTable::from_stored(stored)
            .map_err(|why| serde::de::Error::custom(format!("thin segment table: {why}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEGMENT: u64 = 1 << 20;

    fn at(device: DeviceId, slot: u64) -> Location {
        Location {
            device,
            offset_bytes: slot * SEGMENT,
        }
    }

    #[test]
    fn an_empty_terabyte_table_is_a_few_bytes() {
        let table = ThinTable::all_zero(SEGMENT, (1u64 << 40) / SEGMENT);
        let text = serde_json::to_string(&table).expect("encode");
        assert_eq!(text, r#"{"segment_bytes":1048576,"segments":1048576}"#);
        let back: ThinTable = serde_json::from_str(&text).expect("decode");
        assert_eq!(back, table);
    }

    #[test]
    fn consecutive_slots_make_one_run() {
        let mut editor = SegmentTable::all_zero(100).edit();
        for index in 10..20 {
            editor
                .set(index, SegmentEntry::Mapped(at(3, index - 10)))
                .expect("set");
        }
        editor
            .set(20, SegmentEntry::NoWrite(at(3, 10)))
            .expect("set");
        editor.set(40, SegmentEntry::Mapped(at(4, 0))).expect("set");
        let table = ThinTable {
            segment_bytes: SEGMENT,
            entries: editor.finish(),
        };
        let value = serde_json::to_value(&table).expect("encode");
        assert_eq!(
            value,
            serde_json::json!({"segment_bytes": SEGMENT, "segments": 100, "runs": [
                {"index": 10, "count": 10, "device": 3, "offset_bytes": 0},
                {"index": 20, "count": 1, "device": 3, "offset_bytes": 10 * SEGMENT, "no_write": true},
                {"index": 40, "count": 1, "device": 4, "offset_bytes": 0},
            ]})
        );
        let back: ThinTable = serde_json::from_value(value).expect("decode");
        assert_eq!(back, table);
        assert_eq!(back.located_count(), 12);
    }

    #[test]
    fn bad_stored_tables_are_refused() {
        let cases = [
            (r#"{"segment_bytes":0,"segments":1}"#, "segment_bytes is 0"),
            (
                r#"{"segment_bytes":4096,"segments":4,"runs":[{"index":3,"count":2,"device":0,"offset_bytes":0}]}"#,
                "beyond the table",
            ),
            (
                r#"{"segment_bytes":4096,"segments":4,"runs":[{"index":1,"count":2,"device":0,"offset_bytes":0},{"index":2,"count":1,"device":0,"offset_bytes":65536}]}"#,
                "overlaps",
            ),
            (
                r#"{"segment_bytes":4096,"segments":4,"runs":[{"index":0,"count":0,"device":0,"offset_bytes":0}]}"#,
                "empty",
            ),
            (
                r#"{"segment_bytes":4096,"segments":4,"runs":[{"index":0,"count":2,"device":0,"offset_bytes":18446744073709551615}]}"#,
                "overflow",
            ),
        ];
        for (text, expected) in cases {
            let error = serde_json::from_str::<ThinTable>(text).expect_err(text);
            assert!(error.to_string().contains(expected), "{text}: {error}");
        }
    }

    proptest! {
        #[test]
        fn stored_form_round_trips(
            len in 1u64..3000,
            writes in proptest::collection::vec((0u64..3000, 0u32..3, 0u64..64, any::<bool>()), 0..200),
        ) {
            let mut editor = SegmentTable::all_zero(len).edit();
            for (index, device, slot, no_write) in writes {
                let location = at(device, slot);
                let entry = if no_write { SegmentEntry::NoWrite(location) } else { SegmentEntry::Mapped(location) };
                let _ = editor.set(index % len, entry);
            }
            let table = ThinTable { segment_bytes: SEGMENT, entries: editor.finish() };
            let text = serde_json::to_string(&table).expect("encode");
            let back: ThinTable = serde_json::from_str(&text).expect("decode");
            prop_assert_eq!(&back, &table);
            let located: Vec<_> = table.located().collect();
            prop_assert_eq!(located.len() as u64, table.located_count());
            prop_assert!(located.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }
}
