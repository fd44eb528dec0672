//! `--demo`: a 1 GiB sparse file in the state directory, exported as LUN 0 of a demo target,
//! created through the same control paths as RPC requests. Idempotent: what already exists is
//! kept.

use std::fs::OpenOptions;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use lunar_api::device::DeviceAddParams;
use lunar_api::target::{LunSpec, TargetCreateParams};
use lunar_api::volume::{LayoutSpec, LinearSpec, VolumeCreateParams};

use crate::controller::Controller;
use crate::error::ControlError;

pub const DEMO_DEVICE: &str = "demo-disk";
pub const DEMO_VOLUME: &str = "demo";
pub const DEMO_IQN: &str = "iqn.2026-11.dev.lunar:demo";
pub const DEMO_IMAGE: &str = "demo.img";
pub const DEMO_IMAGE_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot create demo image {path}: {source}")]
    Image { path: String, source: io::Error },
    #[error("demo setup: {0}")]
    Control(#[from] ControlError),
}

/// Make sure the demo device, volume and target exist.
pub fn ensure(controller: &mut Controller, state_dir: &Path) -> Result<(), DemoError> {
    if controller.config().device(DEMO_DEVICE).is_none() {
        let image = state_dir.join(DEMO_IMAGE);
        create_sparse_image(&image).map_err(|source| DemoError::Image {
            path: image.display().to_string(),
            source,
        })?;
        controller.device_add(DeviceAddParams {
            name: DEMO_DEVICE.to_string(),
            path: image.display().to_string(),
        })?;
        tracing::info!("demo: added device {DEMO_DEVICE} ({})", image.display());
    }
    if controller.config().volume(DEMO_VOLUME).is_none() {
        controller.volume_create(VolumeCreateParams {
            name: DEMO_VOLUME.to_string(),
            layout: LayoutSpec::Linear(LinearSpec {
                device: DEMO_DEVICE.to_string(),
                offset_bytes: 0,
                size_bytes: None,
            }),
            block_size: None,
        })?;
        tracing::info!("demo: created volume {DEMO_VOLUME}");
    }
    if controller.config().target(DEMO_IQN).is_none() {
        controller.target_create(TargetCreateParams {
            iqn: DEMO_IQN.to_string(),
            luns: vec![LunSpec {
                lun: 0,
                volume: DEMO_VOLUME.to_string(),
                read_only: false,
                removable: false,
            }],
        })?;
        tracing::info!("demo: created target {DEMO_IQN}");
    }
    Ok(())
}

/// Create the image (sparse) unless it exists; an existing file keeps its contents.
fn create_sparse_image(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => {
            file.set_len(DEMO_IMAGE_BYTES)?;
            file.sync_all()
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The iSCSI URL of the demo LUN (an unspecified listen address is shown as loopback).
pub fn demo_url(listen: SocketAddr) -> String {
    let mut reachable = listen;
    if reachable.ip().is_unspecified() {
        reachable.set_ip(match listen {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("iscsi://{reachable}/{DEMO_IQN}/0")
}

/// What `--demo` prints after the ready line.
pub fn banner(listen: SocketAddr, socket: &Path) -> String {
    let url = demo_url(listen);
    format!(
        "demo volume: {url}\ntry: iscsi-inq {url}\n     lunarctl --socket {} volume list",
        socket.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{controller, FakeOpener};

    #[test]
    fn urls() {
        assert_eq!(
            demo_url("127.0.0.1:3260".parse().expect("addr")),
            "iscsi://127.0.0.1:3260/iqn.2026-11.dev.lunar:demo/0"
        );
        assert_eq!(
            demo_url("0.0.0.0:4000".parse().expect("addr")),
            "iscsi://127.0.0.1:4000/iqn.2026-11.dev.lunar:demo/0"
        );
        assert_eq!(
            demo_url("[::]:3260".parse().expect("addr")),
            "iscsi://[::1]:3260/iqn.2026-11.dev.lunar:demo/0"
        );
        let text = banner(
            "127.0.0.1:3260".parse().expect("addr"),
            Path::new("/s/l.sock"),
        );
        assert!(text.contains("iscsi-inq iscsi://127.0.0.1:3260/"));
        assert!(text.contains("lunarctl --socket /s/l.sock volume list"));
    }

    #[test]
    fn sparse_image_is_created_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(DEMO_IMAGE);
        create_sparse_image(&path).expect("create");
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!(meta.len(), DEMO_IMAGE_BYTES);
        assert!(
            std::os::unix::fs::MetadataExt::blocks(&meta) < 1024,
            "sparse"
        );
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(4096))
            .expect("shrink");
        create_sparse_image(&path).expect("again");
        assert_eq!(
            std::fs::metadata(&path).expect("meta").len(),
            4096,
            "kept as is"
        );
    }

    #[test]
    fn ensure_creates_everything_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join(DEMO_IMAGE);
        let (mut c, plane, _) = controller();
        // Swap in an opener that knows the demo image.
        c.set_opener(Box::new(FakeOpener::with(&[(
            image.to_str().expect("utf8"),
            DEMO_IMAGE_BYTES,
            512,
        )])));
        ensure(&mut c, dir.path()).expect("demo");
        assert!(image.exists());
        let config = c.config().clone();
        assert_eq!(config.devices.len(), 1);
        assert_eq!(config.volumes[0].layout.size_bytes(), DEMO_IMAGE_BYTES);
        assert_eq!(config.targets[0].iqn, DEMO_IQN);
        let published = plane.state().published.len();
        ensure(&mut c, dir.path()).expect("again");
        assert_eq!(c.config(), &config, "nothing duplicated");
        assert_eq!(
            plane.state().published.len(),
            published,
            "nothing republished"
        );
    }
}
