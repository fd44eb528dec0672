//! Discovery and identification through libiscsi's tools: `iscsi-ls` sees the target,
//! `iscsi-inq` reads a direct-access device, `iscsi-readcapacity16` reports the configured size.

use lunar_tests::libiscsi::{
    iscsi_inq, iscsi_ls, iscsi_readcapacity16, parse_inq_field, parse_ls_targets,
    parse_readcapacity16,
};
use lunar_tests::{Backing, Export, VolumeSpec};

const BACKING_LEN_BYTES: u64 = 64 << 20;

/// A 40 MiB volume starting 8 MiB into a 64 MiB file, so its size differs from the file's.
fn partial_export(tag: &str, block_size: Option<u32>) -> Export {
    let spec = VolumeSpec {
        offset_bytes: 8 << 20,
        size_bytes: 40 << 20,
        block_size,
        ..VolumeSpec::whole(tag, BACKING_LEN_BYTES)
    };
    Export::start(Backing::sparse_file(BACKING_LEN_BYTES), spec)
}

#[test]
fn iscsi_ls_discovers_the_target_and_its_lun() {
    let export = partial_export("ls", None);
    let out = iscsi_ls(&export.daemon.portal());
    assert!(out.success(), "{}", export.failure(&out.to_string()));
    let targets = parse_ls_targets(&out.output);
    assert!(
        targets.contains(&export.spec.iqn),
        "{}",
        export.failure(&format!(
            "iscsi-ls does not list {}: {out}",
            export.spec.iqn
        ))
    );
    assert!(
        out.output.contains("Lun:0") && out.output.contains("DIRECT_ACCESS"),
        "{}",
        export.failure(&format!("iscsi-ls shows no direct-access LUN 0: {out}"))
    );
}

#[test]
fn iscsi_inq_reads_a_direct_access_device() {
    let export = partial_export("inq", None);
    let out = iscsi_inq(&export.url());
    assert!(out.success(), "{}", export.failure(&out.to_string()));
    assert_eq!(
        parse_inq_field(&out.output, "Peripheral Device Type"),
        Some("DIRECT_ACCESS"),
        "{}",
        export.failure(&out.to_string())
    );
    assert_eq!(
        parse_inq_field(&out.output, "Peripheral Qualifier"),
        Some("CONNECTED"),
        "{}",
        export.failure(&out.to_string())
    );
}

#[test]
fn iscsi_readcapacity16_reports_the_volume_size() {
    let export = partial_export("capacity", None);
    let out = iscsi_readcapacity16(&export.url());
    assert!(out.success(), "{}", export.failure(&out.to_string()));
    assert_eq!(
        parse_readcapacity16(&out.output),
        Some((40 << 20, 512)),
        "{}",
        export.failure(&format!("expected 40 MiB of 512-byte blocks: {out}"))
    );
}

#[test]
fn iscsi_readcapacity16_reports_4k_blocks() {
    let export = partial_export("capacity4k", Some(4096));
    let out = iscsi_readcapacity16(&export.url());
    assert!(out.success(), "{}", export.failure(&out.to_string()));
    assert_eq!(
        parse_readcapacity16(&out.output),
        Some((40 << 20, 4096)),
        "{}",
        export.failure(&format!("expected 40 MiB of 4096-byte blocks: {out}"))
    );
}

#[test]
fn an_unknown_target_is_refused() {
    let export = partial_export("known", None);
    let url = export
        .daemon
        .url("iqn.2026-11.dev.lunar.test:no-such-target", 0);
    let out = iscsi_inq(&url);
    assert!(
        !out.success() && !out.timed_out,
        "{}",
        export.failure(&format!(
            "a login to an unknown target must fail promptly: {out}"
        ))
    );
}
