//! Configuration and acknowledged data survive a restart: after SIGTERM, and after `kill -9`.

use serde_json::json;

use lunar_tests::initiator::{pattern, BlockClient};
use lunar_tests::libiscsi::iscsi_inq;
use lunar_tests::rpc::json_mentions;
use lunar_tests::{Backing, Export, Lunard};

const BACKING_LEN_BYTES: u64 = 64 << 20;

/// The device, volume and target of `export` are listed again, and the target serves.
fn assert_config_is_back(export: &Export, after: &str) {
    let daemon = &export.daemon;
    let devices = daemon.call("device_list", json!({}));
    let volumes = daemon.call("volume_list", json!({}));
    let targets = daemon.call("target_list", json!({}));
    let spec = &export.spec;
    for (listing, key, name, method) in [
        (&devices, "name", &spec.device, "device_list"),
        (&volumes, "name", &spec.volume, "volume_list"),
        (&targets, "iqn", &spec.iqn, "target_list"),
    ] {
        assert!(
            json_mentions(listing, key, name),
            "{}",
            daemon.failure(&format!(
                "after {after}, {method} does not list {name}: {listing}"
            ))
        );
    }
    let out = iscsi_inq(&export.url());
    assert!(
        out.success(),
        "{}",
        daemon.failure(&format!("after {after}, iscsi-inq fails: {out}"))
    );
}

#[test]
fn config_survives_a_clean_restart() {
    let mut export = Export::whole(Backing::sparse_file(BACKING_LEN_BYTES), "persist-clean");
    let stopped = export.daemon.stop();
    assert!(
        !stopped.forced && stopped.status.is_some_and(|s| s.success()),
        "{}",
        export
            .daemon
            .failure(&format!("lunard must exit cleanly on SIGTERM: {stopped:?}"))
    );
    export.daemon = Lunard::start(export.state.path());
    assert_config_is_back(&export, "SIGTERM and restart");
}

#[test]
fn config_survives_kill9() {
    let mut export = Export::whole(Backing::sparse_file(BACKING_LEN_BYTES), "persist-kill");
    export.daemon.kill9();
    export.daemon = Lunard::start(export.state.path());
    assert_config_is_back(&export, "kill -9 and restart");
    // And a second time, from the state the restarted daemon left.
    export.daemon.kill9();
    export.daemon = Lunard::start(export.state.path());
    assert_config_is_back(&export, "a second kill -9 and restart");
}

#[test]
fn a_deletion_survives_a_restart() {
    let mut export = Export::whole(Backing::sparse_file(BACKING_LEN_BYTES), "persist-delete");
    let iqn = export.spec.iqn.clone();
    export.daemon.call("target_delete", json!({"iqn": iqn}));
    export.daemon.kill9();
    export.daemon = Lunard::start(export.state.path());
    let targets = export.daemon.call("target_list", json!({}));
    assert!(
        !json_mentions(&targets, "iqn", &iqn),
        "{}",
        export.daemon.failure(&format!(
            "deleted target {iqn} is back after restart: {targets}"
        ))
    );
    let volumes = export.daemon.call("volume_list", json!({}));
    assert!(
        json_mentions(&volumes, "name", &export.spec.volume),
        "{}",
        export
            .daemon
            .failure(&format!("volume lost after restart: {volumes}"))
    );
}

#[test]
fn acknowledged_writes_survive_kill9() {
    let mut export = Export::whole(Backing::sparse_file(BACKING_LEN_BYTES), "persist-data");
    let portal = export.daemon.iscsi_addr();
    let iqn = export.spec.iqn.clone();
    let mut client = BlockClient::connect(portal, &iqn, 0)
        .unwrap_or_else(|err| panic!("{}", export.failure(&format!("login: {err}"))));
    let block_len = client.block_len;
    let fua_data = pattern(11, 64, 16, block_len);
    let flushed_data = pattern(12, 4096, 256, block_len);
    let io = |result: Result<(), _>, what: &str, export: &Export| {
        if let Err(err) = result {
            panic!("{}", export.failure(&format!("{what}: {err}")));
        }
    };
    io(client.write(64, &fua_data, true), "FUA write", &export);
    io(client.write(4096, &flushed_data, false), "write", &export);
    io(client.flush(), "SYNCHRONIZE CACHE", &export);
    drop(client);
    export.daemon.kill9();

    export.daemon = Lunard::start(export.state.path());
    let mut client = BlockClient::connect(export.daemon.iscsi_addr(), &iqn, 0)
        .unwrap_or_else(|err| panic!("{}", export.failure(&format!("login after restart: {err}"))));
    for (lba, expected) in [(64u64, &fua_data), (4096, &flushed_data)] {
        let blocks = (expected.len() / block_len as usize) as u32;
        let back = client.read(lba, blocks).unwrap_or_else(|err| {
            panic!("{}", export.failure(&format!("read after restart: {err}")))
        });
        assert!(
            &back == expected,
            "{}",
            export.failure(&format!(
                "acknowledged data at LBA {lba} was lost by kill -9"
            ))
        );
        let on_disk = export
            .backing
            .read_at(lba * u64::from(block_len), expected.len());
        assert!(
            &on_disk == expected,
            "{}",
            export.failure(&format!("backing bytes at LBA {lba} differ"))
        );
    }
}
