//! Property tests: arbitrary or mutated byte streams, cut at arbitrary points, never panic,
//! never make the connection buffer more than one PDU of input, and keep what it sends
//! proportional to what it receives.

use proptest::prelude::*;

use super::initiator::*;
use crate::connection::{Action, CommandResult, ConnConfig, Connection, ResetOutcome, TaskId};

/// A valid conversation: login, then [`full_feature_conversation`].
fn conversation() -> Vec<u8> {
    let mut out = Vec::new();
    let security = text_data(&[
        ("InitiatorName", INITIATOR),
        ("TargetName", TARGET),
        ("AuthMethod", "None"),
    ]);
    let operational = text_data(&OPERATIONAL_KEYS);
    out.extend(login_request(true, false, 0, 1, 0, 1, 1, 0, &security));
    out.extend(login_request(true, false, 1, 3, 0, 1, 1, 1, &operational));
    out.extend(full_feature_conversation());
    out
}

/// A read, a write with R2T data, a NOP, a text request, an ABORT TASK, a write with
/// immediate, unsolicited and solicited data, a continued text request, and a logout. The
/// target transfer tags are guesses (tags are handed out from 1 in order).
fn full_feature_conversation() -> Vec<u8> {
    let mut out = Vec::new();
    let mut ini = Initiator::new(ConnConfig::default());
    let send_targets = text_data(&[("SendTargets", "All")]);
    out.extend(ini.scsi_command(10, &read10(1), true, false, true, 512, &[]));
    out.extend(ini.scsi_command(11, &write10(2), false, true, true, 1024, &[0xaa; 512]));
    out.extend(ini.data_out(11, 1, 0, 512, true, &[0xbb; 512]));
    out.extend(ini.nop_out(12, u32::MAX, true, b"ping"));
    out.extend(ini.text_request(13, u32::MAX, true, false, &send_targets));
    out.extend(ini.task_mgmt(15, 1, 10, 1));
    out.extend(ini.scsi_command(16, &write10(4), false, true, false, 2048, &[0xcc; 512]));
    out.extend(ini.data_out(16, u32::MAX, 0, 512, true, &[0xdd; 512]));
    out.extend(ini.data_out(16, 2, 0, 1024, true, &[0xee; 1024]));
    out.extend(ini.text_request(17, u32::MAX, false, true, b"SendTar"));
    out.extend(ini.text_request(17, 3, true, false, b"gets=All\0"));
    out.extend(ini.logout(14, 0, 1));
    out
}

fn feed(conn: &mut Connection, input: &[u8], cuts: &[usize]) -> usize {
    let mut actions = Vec::new();
    let mut sent = 0usize;
    let mut start = 0usize;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    points.push(input.len());
    for end in points {
        if end < start {
            continue;
        }
        conn.on_recv(&input[start..end], &Catalog, 2_000, &mut actions);
        assert!(conn.recv_buffered_len_bytes() <= conn.max_recv_buffered_len_bytes());
        let mut resets = Vec::new();
        for action in actions.drain(..) {
            if let Action::Reset { id, .. } = action {
                resets.push(id);
            }
            if let Action::Execute(cmd) = action {
                let data = vec![0u8; cmd.expected_len_bytes.min(1 << 16) as usize];
                conn.on_command_done(
                    TaskId(cmd.task.0),
                    CommandResult {
                        status: 0,
                        sense: &[],
                        data_in: &data,
                        scsi_transfer_len_bytes: cmd.expected_len_bytes,
                    },
                    2_000,
                );
                conn.recycle(cmd.data_out);
            }
        }
        for id in resets {
            conn.on_reset_done(id, ResetOutcome::Complete, &mut actions);
        }
        sent += conn.send_buf().len();
        let n = conn.send_buf().len();
        conn.consume_sent(n);
        start = end;
    }
    let mut actions = Vec::new();
    conn.on_tick(1_000_000, &mut actions);
    sent
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        input in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut conn = Connection::new(ConnConfig::default(), 1_000);
        feed(&mut conn, &input, &cuts);
    }

    #[test]
    fn arbitrary_bytes_after_login_never_panic(
        input in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut ini = Initiator::new(ConnConfig::default());
        ini.login();
        ini.recv();
        let sent = feed(&mut ini.conn, &input, &cuts);
        // At most a Reject (96 bytes) per 48 input bytes, plus small fixed answers.
        prop_assert!(sent <= 4 * input.len() + 4096, "sent {sent} for {} input bytes", input.len());
    }

    #[test]
    fn mutated_conversations_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        truncate in any::<Option<usize>>(),
    ) {
        let mut input = conversation();
        for (pos, value) in flips {
            let len = input.len();
            input[pos % len] = value;
        }
        if let Some(t) = truncate {
            let len = input.len();
            input.truncate(t % (len + 1));
        }
        let mut conn = Connection::new(ConnConfig::default(), 1_000);
        let sent = feed(&mut conn, &input, &cuts);
        prop_assert!(sent <= 8 * input.len() + (1 << 17));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_full_feature_traffic_never_panics(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..16),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        truncate in any::<Option<usize>>(),
    ) {
        let mut ini = Initiator::new(ConnConfig::default());
        ini.login_with(&[("InitialR2T", "No")]);
        ini.take_actions();
        ini.recv();
        let mut input = full_feature_conversation();
        for (pos, value) in flips {
            let len = input.len();
            input[pos % len] = value;
        }
        if let Some(t) = truncate {
            let len = input.len();
            input.truncate(t % (len + 1));
        }
        let sent = feed(&mut ini.conn, &input, &cuts);
        prop_assert!(sent <= 8 * input.len() + (1 << 17));
        prop_assert!(ini.conn.tasks.len() <= 256);
    }
}

#[test]
fn the_unmutated_conversation_runs_to_logout() {
    let mut conn = Connection::new(ConnConfig::default(), 1_000);
    let input = conversation();
    let mut actions = Vec::new();
    conn.on_recv(&input, &Catalog, 1_000, &mut actions);
    // The write's Data-Out answers a guessed TTT (1), the first tag handed out.
    let mut executed = Vec::new();
    for action in actions.drain(..) {
        match action {
            Action::LoggedIn { .. } => executed.push(0),
            Action::Execute(cmd) => executed.push(cmd.task.0),
            Action::Close(reason) => panic!("closed early: {reason:?}"),
            Action::Reset { .. } => panic!("no reset in this conversation"),
        }
    }
    assert_eq!(executed, vec![0, 10, 11]);
    // The logout waits for both commands.
    for itt in [10, 11] {
        conn.on_command_done(
            TaskId(itt),
            CommandResult {
                status: 0,
                sense: &[],
                data_in: &[0; 512],
                scsi_transfer_len_bytes: 512,
            },
            1_000,
        );
    }
    conn.on_tick(1_000, &mut actions);
    assert!(matches!(
        actions.as_slice(),
        [Action::Close(crate::connection::CloseReason::Logout)]
    ));
}

#[test]
fn the_unmutated_full_feature_traffic_reaches_every_path() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login_with(&[("InitialR2T", "No")]);
    ini.take_actions();
    ini.recv();
    ini.send(&full_feature_conversation());
    let executed: Vec<u32> = ini
        .take_actions()
        .into_iter()
        .map(|a| match a {
            Action::Execute(cmd) => cmd.task.0,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(executed, vec![10, 11, 16]);
    let opcodes: Vec<u8> = ini.recv().iter().map(|p| p.opcode()).collect();
    // R2T (11), NOP-In, Text Response, R2T (16), empty Text Response asking for more, Text
    // Response; the TMF waits for task 10 and the logout for every command.
    assert_eq!(opcodes, vec![0x31, 0x20, 0x24, 0x31, 0x24, 0x24]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary CHAP values (hex, base64, numbers, junk) in the security stage never panic
    /// and never log anyone in.
    #[test]
    fn arbitrary_chap_values_never_authenticate(
        algorithms in "[0-9,]{0,12}|.{0,12}",
        name in ".{0,40}",
        response in "0[xXbB][0-9a-fA-F+/=]{0,40}|.{0,40}",
        identifier in proptest::option::of("[0-9]{1,4}|0x[0-9a-f]{1,3}|.{0,6}"),
        challenge in proptest::option::of("0[xXbB][0-9a-zA-Z+/=]{0,80}|.{0,20}"),
        transit in any::<bool>(),
    ) {
        let mut ini = Initiator::new(ConnConfig::default());
        ini.catalog = &*CHAP_CATALOG;
        let first = text_data(&[
            ("InitiatorName", INITIATOR),
            ("TargetName", TARGET),
            ("AuthMethod", "CHAP"),
        ]);
        ini.send(&login_request(true, false, 0, 1, 0, 1, 1, 0, &first));
        ini.send(&login_request(false, false, 0, 0, 0, 1, 1, 1, &text_data(&[("CHAP_A", &algorithms)])));
        let mut keys = vec![("CHAP_N", name.as_str()), ("CHAP_R", response.as_str())];
        if let Some(id) = &identifier {
            keys.push(("CHAP_I", id));
        }
        if let Some(c) = &challenge {
            keys.push(("CHAP_C", c));
        }
        ini.send(&login_request(transit, false, 0, u8::from(transit), 0, 1, 1, 2, &text_data(&keys)));
        ini.send(&login_request(true, false, 1, 3, 0, 1, 1, 3, &text_data(&OPERATIONAL_KEYS)));
        let logged_in = ini
            .take_actions()
            .iter()
            .any(|a| matches!(a, Action::LoggedIn { .. }));
        prop_assert!(!logged_in);
        prop_assert!(ini.conn.session_identity().is_none());
    }

    /// Mutated traffic with both digests negotiated never panics and stays bounded.
    #[test]
    fn mutated_traffic_with_digests_never_panics(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut ini = Initiator::new(ConnConfig::default());
        ini.login_with(&[
            ("InitialR2T", "No"),
            ("HeaderDigest", "CRC32C"),
            ("DataDigest", "CRC32C"),
        ]);
        ini.take_actions();
        ini.recv();
        ini.header_digest = true;
        ini.data_digest = true;
        let mut input = ini.seal(&full_feature_conversation());
        for (pos, value) in flips {
            let len = input.len();
            input[pos % len] = value;
        }
        let sent = feed(&mut ini.conn, &input, &cuts);
        prop_assert!(sent <= 8 * input.len() + (1 << 17));
    }
}

static CHAP_CATALOG: std::sync::LazyLock<SecureCatalog> =
    std::sync::LazyLock::new(|| SecureCatalog {
        target_chap: Some(crate::ChapConfig {
            username: "user".into(),
            secret: "a-long-enough-secret".into(),
            mutual: Some(("target".into(), "another-long-secret".into())),
        }),
        ..SecureCatalog::default()
    });

#[test]
fn the_unmutated_sealed_conversation_runs() {
    let mut ini = Initiator::new(ConnConfig::default());
    ini.login_with(&[
        ("InitialR2T", "No"),
        ("HeaderDigest", "CRC32C"),
        ("DataDigest", "CRC32C"),
    ]);
    ini.take_actions();
    ini.recv();
    ini.header_digest = true;
    ini.data_digest = true;
    ini.send(&full_feature_conversation());
    let executed = ini
        .take_actions()
        .iter()
        .filter(|a| matches!(a, Action::Execute(_)))
        .count();
    assert_eq!(executed, 3, "digests check out on every PDU");
}
