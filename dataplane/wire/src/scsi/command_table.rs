//! The table of CDB layouts the decoder understands. Each entry carries the CDB usage data of
//! SPC-4 REPORT SUPPORTED OPERATION CODES: byte 0 is the operation code, the service action
//! field holds the service action, and every other bit is 1 when the decoder evaluates it. The
//! decoder rejects any set bit outside this mask (reserved or unsupported), so the same table
//! drives validation and what the device server reports.

/// Bits of the control byte the decoder evaluates: NACA (bit 2) and the obsolete FLAG/LINK
/// bits (1..0) — all of which must be zero, since neither ACA nor linked commands are
/// supported. Bits 7..6 are vendor specific and ignored; bits 5..3 are reserved.
pub const CONTROL_BYTE_USAGE: u8 = 0x07;
/// Control byte bits that must be zero.
pub const CONTROL_BYTE_MUST_BE_ZERO: u8 = 0x3f;
/// Mask of the service action field in byte 1 of the opcodes that have one.
pub const SERVICE_ACTION_MASK: u8 = 0x1f;

/// One CDB layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandInfo {
    pub opcode: u8,
    /// Service action, for opcodes that carry one in byte 1 bits 4..0.
    pub service_action: Option<u8>,
    pub name: &'static str,
    /// CDB usage data; its length is the CDB length.
    pub usage: &'static [u8],
}

impl CommandInfo {
    pub fn cdb_len(&self) -> usize {
        self.usage.len()
    }
}

const C: u8 = CONTROL_BYTE_USAGE;

/// Every command the decoder knows, ordered by operation code then service action.
pub const COMMANDS: &[CommandInfo] = &[
    CommandInfo {
        opcode: 0x00,
        service_action: None,
        name: "TEST UNIT READY",
        usage: &[0x00, 0x00, 0x00, 0x00, 0x00, C],
    },
    CommandInfo {
        opcode: 0x03,
        service_action: None,
        name: "REQUEST SENSE",
        usage: &[0x03, 0x01, 0x00, 0x00, 0xff, C],
    },
    CommandInfo {
        opcode: 0x08,
        service_action: None,
        name: "READ (6)",
        usage: &[0x08, 0x1f, 0xff, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x0a,
        service_action: None,
        name: "WRITE (6)",
        usage: &[0x0a, 0x1f, 0xff, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x12,
        service_action: None,
        name: "INQUIRY",
        usage: &[0x12, 0x01, 0xff, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x16,
        service_action: None,
        name: "RESERVE (6)",
        usage: &[0x16, 0x00, 0x00, 0x00, 0x00, C],
    },
    CommandInfo {
        opcode: 0x17,
        service_action: None,
        name: "RELEASE (6)",
        usage: &[0x17, 0x00, 0x00, 0x00, 0x00, C],
    },
    CommandInfo {
        opcode: 0x1a,
        service_action: None,
        name: "MODE SENSE (6)",
        usage: &[0x1a, 0x08, 0xff, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x1b,
        service_action: None,
        name: "START STOP UNIT",
        usage: &[0x1b, 0x01, 0x00, 0x0f, 0xf7, C],
    },
    CommandInfo {
        opcode: 0x1e,
        service_action: None,
        name: "PREVENT ALLOW MEDIUM REMOVAL",
        usage: &[0x1e, 0x00, 0x00, 0x00, 0x03, C],
    },
    CommandInfo {
        opcode: 0x25,
        service_action: None,
        name: "READ CAPACITY (10)",
        usage: &[0x25, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01, C],
    },
    CommandInfo {
        opcode: 0x28,
        service_action: None,
        name: "READ (10)",
        usage: &[0x28, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x2a,
        service_action: None,
        name: "WRITE (10)",
        usage: &[0x2a, 0xfa, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x2e,
        service_action: None,
        name: "WRITE AND VERIFY (10)",
        usage: &[0x2e, 0xf6, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x2f,
        service_action: None,
        name: "VERIFY (10)",
        usage: &[0x2f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x34,
        service_action: None,
        name: "PRE-FETCH (10)",
        usage: &[0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x35,
        service_action: None,
        name: "SYNCHRONIZE CACHE (10)",
        usage: &[0x35, 0x06, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x37,
        service_action: None,
        name: "READ DEFECT DATA (10)",
        usage: &[0x37, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x41,
        service_action: None,
        name: "WRITE SAME (10)",
        usage: &[0x41, 0xe8, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x42,
        service_action: None,
        name: "UNMAP",
        usage: &[0x42, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x56,
        service_action: None,
        name: "RESERVE (10)",
        usage: &[0x56, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, C],
    },
    CommandInfo {
        opcode: 0x57,
        service_action: None,
        name: "RELEASE (10)",
        usage: &[0x57, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, C],
    },
    CommandInfo {
        opcode: 0x5a,
        service_action: None,
        name: "MODE SENSE (10)",
        usage: &[0x5a, 0x18, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x5e,
        service_action: Some(0x00),
        name: "PERSISTENT RESERVE IN READ KEYS",
        usage: &[0x5e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x5e,
        service_action: Some(0x01),
        name: "PERSISTENT RESERVE IN READ RESERVATION",
        usage: &[0x5e, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x5e,
        service_action: Some(0x02),
        name: "PERSISTENT RESERVE IN REPORT CAPABILITIES",
        usage: &[0x5e, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x5e,
        service_action: Some(0x03),
        name: "PERSISTENT RESERVE IN READ FULL STATUS",
        usage: &[0x5e, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x5f,
        service_action: Some(0x00),
        name: "PERSISTENT RESERVE OUT REGISTER",
        usage: &[0x5f, 0x00, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x5f,
        service_action: Some(0x01),
        name: "PERSISTENT RESERVE OUT RESERVE",
        usage: &[0x5f, 0x01, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x5f,
        service_action: Some(0x02),
        name: "PERSISTENT RESERVE OUT RELEASE",
        usage: &[0x5f, 0x02, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x5f,
        service_action: Some(0x03),
        name: "PERSISTENT RESERVE OUT CLEAR",
        usage: &[0x5f, 0x03, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x5f,
        service_action: Some(0x04),
        name: "PERSISTENT RESERVE OUT PREEMPT",
        usage: &[0x5f, 0x04, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x5f,
        service_action: Some(0x05),
        name: "PERSISTENT RESERVE OUT PREEMPT AND ABORT",
        usage: &[0x5f, 0x05, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x5f,
        service_action: Some(0x06),
        name: "PERSISTENT RESERVE OUT REGISTER AND IGNORE EXISTING KEY",
        usage: &[0x5f, 0x06, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x5f,
        service_action: Some(0x07),
        name: "PERSISTENT RESERVE OUT REGISTER AND MOVE",
        usage: &[0x5f, 0x07, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C],
    },
    CommandInfo {
        opcode: 0x83,
        service_action: Some(0x00),
        name: "EXTENDED COPY (LID1)",
        usage: &[
            0x83, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
            0x00, C,
        ],
    },
    CommandInfo {
        opcode: 0x84,
        service_action: Some(0x00),
        name: "RECEIVE COPY RESULTS COPY STATUS",
        usage: &[
            0x84, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
            0x00, C,
        ],
    },
    CommandInfo {
        opcode: 0x84,
        service_action: Some(0x03),
        name: "RECEIVE COPY RESULTS OPERATING PARAMETERS",
        usage: &[
            0x84, 0x03, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
            0x00, C,
        ],
    },
    CommandInfo {
        opcode: 0x88,
        service_action: None,
        name: "READ (16)",
        usage: &[
            0x88, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0x89,
        service_action: None,
        name: "COMPARE AND WRITE",
        usage: &[
            0x89, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff,
            0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0x8a,
        service_action: None,
        name: "WRITE (16)",
        usage: &[
            0x8a, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0x8b,
        service_action: None,
        name: "ORWRITE (16)",
        usage: &[
            0x8b, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0x8e,
        service_action: None,
        name: "WRITE AND VERIFY (16)",
        usage: &[
            0x8e, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0x8f,
        service_action: None,
        name: "VERIFY (16)",
        usage: &[
            0x8f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0x90,
        service_action: None,
        name: "PRE-FETCH (16)",
        usage: &[
            0x90, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0x91,
        service_action: None,
        name: "SYNCHRONIZE CACHE (16)",
        usage: &[
            0x91, 0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0x93,
        service_action: None,
        name: "WRITE SAME (16)",
        usage: &[
            0x93, 0xe9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0x9c,
        service_action: None,
        name: "WRITE ATOMIC (16)",
        usage: &[
            0x9c, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0xff, 0xff,
            0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0x9e,
        service_action: Some(0x10),
        name: "READ CAPACITY (16)",
        usage: &[
            0x9e, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x01, C,
        ],
    },
    CommandInfo {
        opcode: 0x9e,
        service_action: Some(0x12),
        name: "GET LBA STATUS",
        usage: &[
            0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x00, C,
        ],
    },
    CommandInfo {
        opcode: 0xa0,
        service_action: None,
        name: "REPORT LUNS",
        usage: &[
            0xa0, 0x00, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, C,
        ],
    },
    CommandInfo {
        opcode: 0xa3,
        service_action: Some(0x0c),
        name: "REPORT SUPPORTED OPERATION CODES",
        usage: &[
            0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, C,
        ],
    },
    CommandInfo {
        opcode: 0xa8,
        service_action: None,
        name: "READ (12)",
        usage: &[
            0xa8, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0xaa,
        service_action: None,
        name: "WRITE (12)",
        usage: &[
            0xaa, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0xae,
        service_action: None,
        name: "WRITE AND VERIFY (12)",
        usage: &[
            0xae, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0xaf,
        service_action: None,
        name: "VERIFY (12)",
        usage: &[
            0xaf, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, C,
        ],
    },
    CommandInfo {
        opcode: 0xb7,
        service_action: None,
        name: "READ DEFECT DATA (12)",
        usage: &[
            0xb7, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, C,
        ],
    },
];

/// No entry in [`COMMANDS`] for an operation code.
const NO_ENTRY: u8 = u8::MAX;

/// For each operation code, the index in [`COMMANDS`] of its first entry, so a lookup reads
/// one slot and the few entries of the code instead of walking the table.
static FIRST_ENTRY: [u8; 256] = first_entries();

const fn first_entries() -> [u8; 256] {
    assert!(COMMANDS.len() < NO_ENTRY as usize);
    let mut first = [NO_ENTRY; 256];
    let mut index = COMMANDS.len();
    while index > 0 {
        index -= 1;
        first[COMMANDS[index].opcode as usize] = index as u8;
    }
    first
}

/// The entries of `opcode` (consecutive: the table is sorted by operation code).
fn entries(opcode: u8) -> &'static [CommandInfo] {
    let first = FIRST_ENTRY[usize::from(opcode)];
    if first == NO_ENTRY {
        return &[];
    }
    let rest = &COMMANDS[usize::from(first)..];
    let count = rest.iter().take_while(|info| info.opcode == opcode).count();
    &rest[..count]
}

/// Whether `opcode` carries a service action in byte 1.
pub fn has_service_actions(opcode: u8) -> bool {
    entries(opcode)
        .iter()
        .any(|info| info.service_action.is_some())
}

/// The table entry for `opcode` (and `service_action`, for opcodes that carry one; it is
/// ignored for the others).
pub fn command_info(opcode: u8, service_action: Option<u8>) -> Option<&'static CommandInfo> {
    entries(opcode)
        .iter()
        .find(|info| match info.service_action {
            None => true,
            Some(sa) => service_action == Some(sa),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_consistent() {
        let mut previous: Option<(u8, Option<u8>)> = None;
        for info in COMMANDS {
            assert_eq!(info.usage[0], info.opcode, "{}", info.name);
            let group_len = match info.opcode >> 5 {
                0 => 6,
                1 | 2 => 10,
                4 => 16,
                5 => 12,
                _ => 0,
            };
            assert_eq!(info.cdb_len(), group_len, "{}", info.name);
            assert_eq!(info.usage[info.cdb_len() - 1], CONTROL_BYTE_USAGE);
            if let Some(sa) = info.service_action {
                assert_eq!(info.usage[1] & SERVICE_ACTION_MASK, sa, "{}", info.name);
                assert_eq!(info.usage[1] & !SERVICE_ACTION_MASK, 0, "{}", info.name);
            }
            let key = (info.opcode, info.service_action);
            assert!(previous < Some(key), "table not sorted at {}", info.name);
            previous = Some(key);
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(command_info(0x28, None).unwrap().name, "READ (10)");
        assert_eq!(command_info(0x28, Some(3)).unwrap().name, "READ (10)");
        assert_eq!(
            command_info(0x9e, Some(0x10)).unwrap().name,
            "READ CAPACITY (16)"
        );
        assert_eq!(
            command_info(0x9e, Some(0x12)).unwrap().name,
            "GET LBA STATUS"
        );
        assert!(command_info(0x9e, Some(0x13)).is_none());
        assert!(command_info(0x5e, Some(0x04)).is_none());
        assert!(has_service_actions(0x5f));
        assert!(command_info(0x9e, None).is_none());
        assert!(command_info(0x04, None).is_none());
        assert!(has_service_actions(0xa3));
        assert!(!has_service_actions(0x28));
    }

    #[test]
    fn the_index_finds_what_a_walk_of_the_table_finds() {
        for opcode in 0..=u8::MAX {
            let walked: Vec<&CommandInfo> =
                COMMANDS.iter().filter(|i| i.opcode == opcode).collect();
            let indexed: Vec<&CommandInfo> = entries(opcode).iter().collect();
            assert_eq!(walked, indexed, "opcode {opcode:#04x}");
            for service_action in (0..32).map(Some).chain([None]) {
                let found = COMMANDS.iter().find(|info| {
                    info.opcode == opcode
                        && (info.service_action.is_none() || info.service_action == service_action)
                });
                assert_eq!(command_info(opcode, service_action), found);
            }
        }
    }
}
