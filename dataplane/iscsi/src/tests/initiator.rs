//! A minimal initiator for tests: builds request PDUs at the RFC 7143 byte offsets (independently
//! of the header structs under test), feeds them to a connection, and parses its output.

use lunar_wire::iscsi::digest::{data_digest, header_digest};
use lunar_wire::iscsi::framer::{next_frame, DigestKind, FrameLimits, FrameStatus};
use lunar_wire::iscsi::text;
use lunar_wire::iscsi::{Opcode, RESERVED_TAG};

use crate::connection::{Action, CommandResult, ConnConfig, Connection, TargetCatalog, TaskId};

pub const TARGET: &str = "iqn.2024-01.org.lunar:disk1";
pub const OTHER_TARGET: &str = "iqn.2024-01.org.lunar:disk2";
pub const INITIATOR: &str = "iqn.1994-05.com.example:host1";
pub const ISID: [u8; 6] = [0x80, 0x12, 0x34, 0x56, 0x78, 0x9a];

/// Two targets, each on one portal.
pub struct Catalog;

impl TargetCatalog for Catalog {
    fn target_exists(&self, iqn: &str) -> bool {
        iqn == TARGET || iqn == OTHER_TARGET
    }
    fn send_targets(&self, only: Option<&str>) -> Vec<(String, Vec<String>)> {
        [
            (
                TARGET,
                vec![
                    "10.0.0.1:3260,1".to_string(),
                    "[fd00::1]:3260,1".to_string(),
                ],
            ),
            (OTHER_TARGET, vec!["10.0.0.1:3260,1".to_string()]),
        ]
        .into_iter()
        .filter(|(iqn, _)| only.is_none_or(|o| o == *iqn))
        .map(|(iqn, addrs)| (iqn.to_string(), addrs))
        .collect()
    }
}

/// A catalog with CHAP credentials and access lists, for the security tests.
#[derive(Debug, Clone, Default)]
pub struct SecureCatalog {
    /// Credentials of `TARGET` (`OTHER_TARGET` has none).
    pub target_chap: Option<crate::ChapConfig>,
    pub discovery_chap: Option<crate::ChapConfig>,
    /// `(target, initiator)` pairs admitted; `None` admits everyone.
    pub allowed: Option<Vec<(&'static str, &'static str)>>,
}

impl SecureCatalog {
    /// A catalog the `Initiator` can hold on to for the rest of the test.
    pub fn leak(self) -> &'static dyn TargetCatalog {
        Box::leak(Box::new(self))
    }
}

impl TargetCatalog for SecureCatalog {
    fn target_exists(&self, iqn: &str) -> bool {
        Catalog.target_exists(iqn)
    }
    fn send_targets(&self, only: Option<&str>) -> Vec<(String, Vec<String>)> {
        Catalog.send_targets(only)
    }
    fn chap(&self, target: Option<&str>) -> Option<crate::ChapConfig> {
        match target {
            None => self.discovery_chap.clone(),
            Some(TARGET) => self.target_chap.clone(),
            Some(_) => None,
        }
    }
    fn initiator_allowed(&self, target: &str, initiator: &str) -> bool {
        self.allowed
            .as_ref()
            .is_none_or(|list| list.iter().any(|(t, i)| *t == target && *i == initiator))
    }
}

/// A PDU the target sent.
#[derive(Debug, Clone)]
pub struct Received {
    pub bhs: [u8; 48],
    pub data: Vec<u8>,
}

impl Received {
    pub fn opcode(&self) -> u8 {
        self.bhs[0] & 0x3f
    }
    pub fn flags(&self) -> u8 {
        self.bhs[1]
    }
    pub fn u32_at(&self, offset: usize) -> u32 {
        u32::from_be_bytes([
            self.bhs[offset],
            self.bhs[offset + 1],
            self.bhs[offset + 2],
            self.bhs[offset + 3],
        ])
    }
    pub fn itt(&self) -> u32 {
        self.u32_at(16)
    }
    pub fn ttt(&self) -> u32 {
        self.u32_at(20)
    }
    pub fn stat_sn(&self) -> u32 {
        self.u32_at(24)
    }
    pub fn exp_cmd_sn(&self) -> u32 {
        self.u32_at(28)
    }
    pub fn max_cmd_sn(&self) -> u32 {
        self.u32_at(32)
    }
    /// Login status (class and detail).
    pub fn login_status(&self) -> u16 {
        u16::from_be_bytes([self.bhs[36], self.bhs[37]])
    }
    pub fn tsih(&self) -> u16 {
        u16::from_be_bytes([self.bhs[14], self.bhs[15]])
    }
    /// Text pairs of the data segment (SendTargets answers repeat keys).
    pub fn pairs(&self) -> Vec<(String, String)> {
        text::pairs(&self.data)
            .map(|kv| kv.expect("target sends well-formed text"))
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect()
    }
    pub fn value(&self, key: &str) -> Option<String> {
        self.pairs()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
    pub fn is(&self, opcode: Opcode) -> bool {
        self.opcode() == opcode as u8
    }
}

/// Builds a 48-byte BHS plus data segment and padding.
pub fn pdu(opcode: u8, flags: u8, fill: impl FnOnce(&mut [u8; 48]), data: &[u8]) -> Vec<u8> {
    let mut bhs = [0u8; 48];
    bhs[0] = opcode;
    bhs[1] = flags;
    fill(&mut bhs);
    let len = (data.len() as u32).to_be_bytes();
    bhs[5..8].copy_from_slice(&len[1..]);
    let mut out = bhs.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out
}

pub fn put32(bhs: &mut [u8; 48], offset: usize, value: u32) {
    bhs[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
}

pub fn text_data(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        text::push_pair(&mut out, k, v);
    }
    out
}

#[allow(clippy::too_many_arguments)]
pub fn login_request(
    transit: bool,
    cont: bool,
    csg: u8,
    nsg: u8,
    tsih: u16,
    itt: u32,
    cmd_sn: u32,
    exp_stat_sn: u32,
    data: &[u8],
) -> Vec<u8> {
    let flags = (u8::from(transit) << 7) | (u8::from(cont) << 6) | (csg << 2) | nsg;
    pdu(
        0x43,
        flags,
        |b| {
            b[2] = 0; // version max
            b[3] = 0; // version min
            b[8..14].copy_from_slice(&ISID);
            b[14..16].copy_from_slice(&tsih.to_be_bytes());
            put32(b, 16, itt);
            b[20..22].copy_from_slice(&1u16.to_be_bytes()); // CID
            put32(b, 24, cmd_sn);
            put32(b, 28, exp_stat_sn);
        },
        data,
    )
}

/// A small initiator driving one connection.
pub struct Initiator {
    pub conn: Connection,
    pub now_ms: u64,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
    next_itt: u32,
    pub actions: Vec<Action>,
    pub catalog: &'static dyn TargetCatalog,
    /// CRC32C digests in use (set once login negotiated them): `send` adds them to every PDU
    /// and `recv` checks and strips them.
    pub header_digest: bool,
    pub data_digest: bool,
    /// The reactor-side buffers of responses completed with `complete_borrowing`, by name.
    borrowed_buffers: Vec<Vec<u8>>,
}

/// The keys a typical initiator proposes in the operational stage.
pub const OPERATIONAL_KEYS: [(&str, &str); 12] = [
    ("HeaderDigest", "None"),
    ("DataDigest", "None"),
    ("MaxConnections", "1"),
    ("InitialR2T", "Yes"),
    ("ImmediateData", "Yes"),
    ("MaxRecvDataSegmentLength", "8192"),
    ("MaxBurstLength", "262144"),
    ("FirstBurstLength", "65536"),
    ("DefaultTime2Wait", "2"),
    ("DefaultTime2Retain", "0"),
    ("MaxOutstandingR2T", "1"),
    ("ErrorRecoveryLevel", "0"),
];

impl Initiator {
    pub fn new(config: ConnConfig) -> Initiator {
        Initiator {
            conn: Connection::new(config, 1_000),
            now_ms: 1_000,
            cmd_sn: 1,
            exp_stat_sn: 0,
            next_itt: 0x100,
            actions: Vec::new(),
            catalog: &Catalog,
            header_digest: false,
            data_digest: false,
            borrowed_buffers: Vec::new(),
        }
    }

    /// Adds the negotiated digests to each whole PDU in `bytes` (built without them).
    pub fn seal(&self, bytes: &[u8]) -> Vec<u8> {
        if !self.header_digest && !self.data_digest {
            return bytes.to_vec();
        }
        let limits = FrameLimits {
            max_data_segment_len_bytes: (1 << 24) - 1,
            ..FrameLimits::LOGIN
        };
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Ok(FrameStatus::Complete(frame)) = next_frame(rest, &limits) {
            out.extend_from_slice(frame.bhs_bytes);
            out.extend_from_slice(frame.ahs);
            if self.header_digest {
                out.extend_from_slice(&header_digest(frame.bhs_bytes, frame.ahs));
            }
            out.extend_from_slice(frame.data);
            out.extend_from_slice(frame.data_padding);
            if self.data_digest && !frame.data.is_empty() {
                out.extend_from_slice(&data_digest(frame.data, frame.data_padding));
            }
            rest = &rest[frame.len_bytes..];
        }
        out.extend_from_slice(rest);
        out
    }

    pub fn itt(&mut self) -> u32 {
        self.next_itt += 1;
        self.next_itt
    }

    /// Feeds bytes (in one call, digests added when negotiated) and collects the actions.
    pub fn send(&mut self, bytes: &[u8]) {
        let sealed = self.seal(bytes);
        self.send_raw(&sealed);
    }

    /// Feeds bytes exactly as given.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let mut actions = Vec::new();
        self.conn
            .on_recv(bytes, self.catalog, self.now_ms, &mut actions);
        self.actions.extend(actions);
    }

    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        let mut actions = Vec::new();
        self.conn.on_tick(now_ms, &mut actions);
        self.actions.extend(actions);
    }

    /// Everything the target has queued, decoded (and drained).
    pub fn recv(&mut self) -> Vec<Received> {
        // What a reactor sends: the queued bytes with the borrowed data gathered in.
        let mut bytes = Vec::new();
        let mut borrowed = Vec::new();
        self.conn.take_send(&mut bytes, &mut borrowed);
        for b in borrowed.iter().rev() {
            let buffer = &self.borrowed_buffers[b.buffer as usize];
            let data = &buffer[b.offset_bytes..b.offset_bytes + b.len_bytes];
            bytes.splice(b.at_bytes..b.at_bytes, data.iter().copied());
        }
        let kind = |on: bool| {
            if on {
                DigestKind::Crc32c
            } else {
                DigestKind::None
            }
        };
        let limits = FrameLimits {
            max_data_segment_len_bytes: (1 << 24) - 1,
            header_digest: kind(self.header_digest),
            data_digest: kind(self.data_digest),
        };
        let mut out = Vec::new();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            match next_frame(rest, &limits) {
                Ok(FrameStatus::Complete(frame)) => {
                    assert_eq!(frame.check_header_digest(), Ok(()), "target header digest");
                    assert_eq!(frame.check_data_digest(), Ok(()), "target data digest");
                    out.push(Received {
                        bhs: *frame.bhs_bytes,
                        data: frame.data.to_vec(),
                    });
                    rest = &rest[frame.len_bytes..];
                }
                other => panic!("target sent a partial or malformed PDU: {other:?}"),
            }
        }
        for pdu in &out {
            // Track the StatSN of status-carrying PDUs.
            let carries_status = match pdu.opcode() {
                0x25 => pdu.flags() & 0x01 != 0,
                0x31 => false,
                0x20 => pdu.itt() != RESERVED_TAG,
                _ => true,
            };
            if carries_status {
                self.exp_stat_sn = pdu.stat_sn().wrapping_add(1);
            }
        }
        out
    }

    /// Exactly one PDU.
    pub fn recv_one(&mut self) -> Received {
        let mut all = self.recv();
        assert_eq!(all.len(), 1, "expected one PDU, got {all:?}");
        all.remove(0)
    }

    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Logs in to `TARGET` through both negotiation stages, with `extra` operational keys
    /// replacing or adding to [`OPERATIONAL_KEYS`].
    pub fn login_with(&mut self, extra: &[(&str, &str)]) -> Received {
        let security = text_data(&[
            ("InitiatorName", INITIATOR),
            ("SessionType", "Normal"),
            ("TargetName", TARGET),
            ("AuthMethod", "None"),
        ]);
        let itt = self.itt();
        self.send(&login_request(
            true,
            false,
            0,
            1,
            0,
            itt,
            self.cmd_sn,
            0,
            &security,
        ));
        let first = self.recv_one();
        assert_eq!(first.login_status(), 0, "{first:?}");
        self.exp_stat_sn = first.stat_sn().wrapping_add(1);
        let mut keys: Vec<(&str, &str)> = OPERATIONAL_KEYS
            .iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .copied()
            .collect();
        keys.extend_from_slice(extra);
        let op = text_data(&keys);
        self.send(&login_request(
            true,
            false,
            1,
            3,
            0,
            itt,
            self.cmd_sn,
            self.exp_stat_sn,
            &op,
        ));
        let last = self.recv_one();
        assert_eq!(last.login_status(), 0, "{last:?}");
        assert_eq!(last.flags() & 0x80, 0x80, "transit to FFP");
        last
    }

    /// Logs in a discovery session straight from the security stage.
    pub fn login_discovery(&mut self) {
        let keys = text_data(&[
            ("InitiatorName", INITIATOR),
            ("SessionType", "Discovery"),
            ("AuthMethod", "None"),
        ]);
        let itt = self.itt();
        self.send(&login_request(
            true,
            false,
            0,
            3,
            0,
            itt,
            self.cmd_sn,
            0,
            &keys,
        ));
        let resp = self.recv_one();
        assert_eq!(resp.login_status(), 0, "{resp:?}");
        assert_eq!(resp.value("TargetPortalGroupTag"), None);
        let actions = self.take_actions();
        assert!(
            matches!(
                actions.as_slice(),
                [Action::LoggedIn {
                    kind: crate::connection::SessionKind::Discovery,
                    target: None,
                    ..
                }]
            ),
            "{actions:?}"
        );
    }

    pub fn login(&mut self) -> Received {
        let last = self.login_with(&[]);
        let actions = self.take_actions();
        assert!(
            matches!(actions.as_slice(), [Action::LoggedIn { .. }]),
            "{actions:?}"
        );
        last
    }

    /// A SCSI Command; `cmd_sn` is taken from the counter (and advanced) unless immediate.
    #[allow(clippy::too_many_arguments)]
    pub fn scsi_command(
        &mut self,
        itt: u32,
        cdb: &[u8],
        read: bool,
        write: bool,
        final_bit: bool,
        expected_len: u32,
        immediate_data: &[u8],
    ) -> Vec<u8> {
        let cmd_sn = self.cmd_sn;
        self.cmd_sn = self.cmd_sn.wrapping_add(1);
        self.scsi_command_sn(
            itt,
            cdb,
            read,
            write,
            final_bit,
            expected_len,
            immediate_data,
            cmd_sn,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub fn scsi_command_sn(
        &mut self,
        itt: u32,
        cdb: &[u8],
        read: bool,
        write: bool,
        final_bit: bool,
        expected_len: u32,
        immediate_data: &[u8],
        cmd_sn: u32,
    ) -> Vec<u8> {
        let flags = (u8::from(final_bit) << 7) | (u8::from(read) << 6) | (u8::from(write) << 5) | 1;
        let exp_stat_sn = self.exp_stat_sn;
        pdu(
            0x01,
            flags,
            |b| {
                b[9] = 0; // LUN 0
                put32(b, 16, itt);
                put32(b, 20, expected_len);
                put32(b, 24, cmd_sn);
                put32(b, 28, exp_stat_sn);
                let n = cdb.len().min(16);
                b[32..32 + n].copy_from_slice(&cdb[..n]);
            },
            immediate_data,
        )
    }

    pub fn data_out(
        &self,
        itt: u32,
        ttt: u32,
        data_sn: u32,
        offset: u32,
        final_bit: bool,
        data: &[u8],
    ) -> Vec<u8> {
        let exp_stat_sn = self.exp_stat_sn;
        pdu(
            0x05,
            u8::from(final_bit) << 7,
            |b| {
                put32(b, 16, itt);
                put32(b, 20, ttt);
                put32(b, 28, exp_stat_sn);
                put32(b, 36, data_sn);
                put32(b, 40, offset);
            },
            data,
        )
    }

    pub fn nop_out(&mut self, itt: u32, ttt: u32, immediate: bool, data: &[u8]) -> Vec<u8> {
        let cmd_sn = self.cmd_sn;
        if !immediate {
            self.cmd_sn = self.cmd_sn.wrapping_add(1);
        }
        let exp_stat_sn = self.exp_stat_sn;
        pdu(
            if immediate { 0x40 } else { 0x00 },
            0x80,
            |b| {
                put32(b, 16, itt);
                put32(b, 20, ttt);
                put32(b, 24, cmd_sn);
                put32(b, 28, exp_stat_sn);
            },
            data,
        )
    }

    pub fn text_request(
        &mut self,
        itt: u32,
        ttt: u32,
        final_bit: bool,
        cont: bool,
        data: &[u8],
    ) -> Vec<u8> {
        let cmd_sn = self.cmd_sn;
        let exp_stat_sn = self.exp_stat_sn;
        pdu(
            0x44,
            (u8::from(final_bit) << 7) | (u8::from(cont) << 6),
            |b| {
                put32(b, 16, itt);
                put32(b, 20, ttt);
                put32(b, 24, cmd_sn);
                put32(b, 28, exp_stat_sn);
            },
            data,
        )
    }

    pub fn logout(&mut self, itt: u32, reason: u8, cid: u16) -> Vec<u8> {
        let cmd_sn = self.cmd_sn;
        self.cmd_sn = self.cmd_sn.wrapping_add(1);
        let exp_stat_sn = self.exp_stat_sn;
        pdu(
            0x06,
            0x80 | reason,
            |b| {
                put32(b, 16, itt);
                b[20..22].copy_from_slice(&cid.to_be_bytes());
                put32(b, 24, cmd_sn);
                put32(b, 28, exp_stat_sn);
            },
            &[],
        )
    }

    pub fn task_mgmt(
        &mut self,
        itt: u32,
        function: u8,
        referenced: u32,
        ref_cmd_sn: u32,
    ) -> Vec<u8> {
        let cmd_sn = self.cmd_sn;
        let exp_stat_sn = self.exp_stat_sn;
        pdu(
            0x42,
            0x80 | function,
            |b| {
                put32(b, 16, itt);
                put32(b, 20, referenced);
                put32(b, 24, cmd_sn);
                put32(b, 28, exp_stat_sn);
                put32(b, 32, ref_cmd_sn);
            },
            &[],
        )
    }

    /// The single `Execute` action expected now.
    pub fn expect_execute(&mut self) -> crate::connection::ScsiCommand {
        let mut actions = self.take_actions();
        assert_eq!(actions.len(), 1, "{actions:?}");
        match actions.remove(0) {
            Action::Execute(cmd) => cmd,
            other => panic!("expected Execute, got {other:?}"),
        }
    }

    pub fn complete(&mut self, itt: u32, status: u8, sense: &[u8], data_in: &[u8], scsi_len: u32) {
        self.conn.on_command_done(
            TaskId(itt),
            CommandResult {
                status,
                sense,
                data_in,
                scsi_transfer_len_bytes: scsi_len,
            },
            self.now_ms,
        );
    }
}

impl Initiator {
    /// Completes a command as the reactor does for reads: the data stays in its buffer.
    /// Returns whether the queued response borrowed it.
    pub fn complete_borrowing(
        &mut self,
        itt: u32,
        status: u8,
        sense: &[u8],
        data_in: &[u8],
        scsi_len: u32,
    ) -> bool {
        let buffer = self.borrowed_buffers.len() as u64;
        self.borrowed_buffers.push(data_in.to_vec());
        self.conn.on_command_done_borrowing(
            TaskId(itt),
            CommandResult {
                status,
                sense,
                data_in,
                scsi_transfer_len_bytes: scsi_len,
            },
            buffer,
            self.now_ms,
        )
    }
}

/// READ(10) of `blocks` blocks at LBA 0.
pub fn read10(blocks: u16) -> [u8; 10] {
    let [hi, lo] = blocks.to_be_bytes();
    [0x28, 0, 0, 0, 0, 0, 0, hi, lo, 0]
}

/// WRITE(10) of `blocks` blocks at LBA 0.
pub fn write10(blocks: u16) -> [u8; 10] {
    let [hi, lo] = blocks.to_be_bytes();
    [0x2a, 0, 0, 0, 0, 0, 0, hi, lo, 0]
}
