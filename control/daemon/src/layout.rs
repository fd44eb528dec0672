//! Volume layouts on the control path: resolving a requested [`LayoutSpec`] into a stored
//! [`LayoutConfig`], checking it against the devices and the other volumes, and compiling it
//! into the data plane's [`Layout`].

use std::collections::BTreeMap;
use std::sync::Arc;

use lunar_api::volume::{LayoutSpec, LinearSpec, VOLUME_BLOCK_SIZES};
use lunar_reactor::BackendFile;
use lunar_volume::layout::{DeviceId, Layout};

use crate::config::{LayoutConfig, VolumeConfig};
use crate::error::ControlError;

/// Open devices by name.
pub type Devices = BTreeMap<String, Arc<BackendFile>>;

/// Deepest layout tree accepted (a lone linear extent is depth 1).
pub const MAX_LAYOUT_DEPTH: usize = 8;
/// Most linear extents in one volume.
pub const MAX_LAYOUT_EXTENTS: usize = 1024;

/// Check a volume block size given by a client.
pub fn check_block_size(block_size: u32) -> Result<(), ControlError> {
    if VOLUME_BLOCK_SIZES.contains(&block_size) {
        Ok(())
    } else {
        Err(ControlError::InvalidParams(format!(
            "block_size {block_size} is not supported: use 512 or 4096"
        )))
    }
}

/// Fill in what the client left out (offsets default to 0 in the spec already; a missing size
/// is the rest of the device rounded down to `block_size`).
pub fn resolve(
    spec: &LayoutSpec,
    block_size: u32,
    devices: &Devices,
) -> Result<LayoutConfig, ControlError> {
    resolve_at(spec, block_size, devices, 1)
}

fn resolve_at(
    spec: &LayoutSpec,
    block_size: u32,
    devices: &Devices,
    depth: usize,
) -> Result<LayoutConfig, ControlError> {
    if depth > MAX_LAYOUT_DEPTH {
        return Err(too_deep());
    }
    match spec {
        LayoutSpec::Linear(LinearSpec {
            device,
            offset_bytes,
            size_bytes,
        }) => {
            let file = devices
                .get(device)
                .ok_or_else(|| ControlError::not_found("device", device))?;
            let size_bytes = match size_bytes {
                Some(size) => *size,
                None => {
                    let rest = file.size_bytes.checked_sub(*offset_bytes).ok_or_else(|| {
                        ControlError::Conflict(format!(
                            "offset {offset_bytes} is beyond the end of device '{device}' ({} bytes)",
                            file.size_bytes
                        ))
                    })?;
                    let whole = rest / u64::from(block_size) * u64::from(block_size);
                    if whole == 0 {
                        return Err(ControlError::Conflict(format!(
                            "device '{device}' has no whole {block_size}-byte block after offset {offset_bytes}"
                        )));
                    }
                    whole
                }
            };
            Ok(LayoutConfig::Linear {
                device: device.clone(),
                offset_bytes: *offset_bytes,
                size_bytes,
            })
        }
        LayoutSpec::Concat(members) => {
            if members.is_empty() {
                return Err(ControlError::InvalidParams(
                    "concat needs at least one member".to_string(),
                ));
            }
            if members.len() > MAX_LAYOUT_EXTENTS {
                return Err(too_many_extents());
            }
            members
                .iter()
                .map(|m| resolve_at(m, block_size, devices, depth + 1))
                .collect::<Result<Vec<_>, _>>()
                .map(LayoutConfig::Concat)
        }
    }
}

fn too_deep() -> ControlError {
    ControlError::InvalidParams(format!(
        "layout is nested more than {MAX_LAYOUT_DEPTH} levels deep"
    ))
}

fn too_many_extents() -> ControlError {
    ControlError::InvalidParams(format!("layout has more than {MAX_LAYOUT_EXTENTS} extents"))
}

/// One extent of some volume on some device.
struct Placed<'a> {
    device: &'a str,
    start_bytes: u64,
    end_bytes: u64,
    volume: &'a str,
}

/// Check a resolved layout for volume `name`: shape (depth, extent count, no empty concat),
/// every extent non-empty, aligned to `block_size` and to its device's logical block size,
/// inside its device, no overlap with itself or with `others`. Returns the volume size.
pub fn check_layout(
    name: &str,
    layout: &LayoutConfig,
    block_size: u32,
    devices: &Devices,
    others: &[VolumeConfig],
) -> Result<u64, ControlError> {
    check_shape(layout, 1)?;
    let mut extents: Vec<(&str, u64, u64)> = Vec::new();
    layout.for_each_extent(&mut |d, o, s| extents.push((d, o, s)));
    if extents.len() > MAX_LAYOUT_EXTENTS {
        return Err(too_many_extents());
    }
    let block = u64::from(block_size);
    let mut total_bytes: u64 = 0;
    for &(device, offset_bytes, size_bytes) in &extents {
        let file = devices
            .get(device)
            .ok_or_else(|| ControlError::not_found("device", device))?;
        let at = format!("extent of device '{device}' at offset {offset_bytes}");
        if size_bytes == 0 {
            return Err(ControlError::InvalidParams(format!(
                "{at}: size_bytes is 0"
            )));
        }
        let device_block = u64::from(file.logical_block_bytes);
        if device_block > block {
            return Err(ControlError::Conflict(format!(
                "volume block size {block_size} is smaller than the logical block size {device_block} of device '{device}'"
            )));
        }
        if offset_bytes % block != 0 || size_bytes % block != 0 {
            return Err(ControlError::Conflict(format!(
                "{at}: offset and size ({size_bytes}) must be multiples of the volume block size {block_size}"
            )));
        }
        if device_block != 0 && (offset_bytes % device_block != 0 || size_bytes % device_block != 0)
        {
            return Err(ControlError::Conflict(format!(
                "{at}: offset and size ({size_bytes}) must be multiples of the logical block size {device_block} of device '{device}'"
            )));
        }
        let end_bytes = offset_bytes.checked_add(size_bytes);
        if end_bytes.is_none_or(|end| end > file.size_bytes) {
            return Err(ControlError::Conflict(format!(
                "{at}: size {size_bytes} goes beyond the end of device '{device}' ({} bytes)",
                file.size_bytes
            )));
        }
        total_bytes = total_bytes.checked_add(size_bytes).ok_or_else(|| {
            ControlError::InvalidParams("volume size exceeds 2^64 bytes".to_string())
        })?;
    }
    check_overlaps(name, &extents, others)?;
    Ok(total_bytes)
}

fn check_shape(layout: &LayoutConfig, depth: usize) -> Result<(), ControlError> {
    if depth > MAX_LAYOUT_DEPTH {
        return Err(too_deep());
    }
    if let LayoutConfig::Concat(members) = layout {
        if members.is_empty() {
            return Err(ControlError::InvalidParams(
                "concat needs at least one member".to_string(),
            ));
        }
        if members.len() > MAX_LAYOUT_EXTENTS {
            return Err(too_many_extents());
        }
        for member in members {
            check_shape(member, depth + 1)?;
        }
    }
    Ok(())
}

fn check_overlaps(
    name: &str,
    extents: &[(&str, u64, u64)],
    others: &[VolumeConfig],
) -> Result<(), ControlError> {
    let mut placed: Vec<Placed<'_>> = Vec::new();
    for other in others.iter().filter(|v| v.name != name) {
        other.layout.for_each_extent(&mut |device, offset, size| {
            placed.push(Placed {
                device,
                start_bytes: offset,
                end_bytes: offset.saturating_add(size),
                volume: &other.name,
            })
        });
    }
    for (index, &(device, offset_bytes, size_bytes)) in extents.iter().enumerate() {
        let end_bytes = offset_bytes.saturating_add(size_bytes);
        let overlaps = |p: &Placed<'_>| {
            p.device == device && p.start_bytes < end_bytes && offset_bytes < p.end_bytes
        };
        if let Some(hit) = placed.iter().find(|p| overlaps(p)) {
            return Err(ControlError::Conflict(format!(
                "extent of device '{device}' at offset {offset_bytes} overlaps volume '{}' ({}..{})",
                hit.volume, hit.start_bytes, hit.end_bytes
            )));
        }
        let earlier = extents[..index]
            .iter()
            .any(|&(d, o, s)| d == device && o < end_bytes && offset_bytes < o.saturating_add(s));
        if earlier {
            return Err(ControlError::Conflict(format!(
                "extent of device '{device}' at offset {offset_bytes} overlaps another extent of the same volume"
            )));
        }
    }
    Ok(())
}

/// The stored layout as the API shows it.
pub fn to_spec(layout: &LayoutConfig) -> LayoutSpec {
    match layout {
        LayoutConfig::Linear {
            device,
            offset_bytes,
            size_bytes,
        } => LayoutSpec::Linear(LinearSpec {
            device: device.clone(),
            offset_bytes: *offset_bytes,
            size_bytes: Some(*size_bytes),
        }),
        LayoutConfig::Concat(members) => LayoutSpec::Concat(members.iter().map(to_spec).collect()),
    }
}

/// Compile the stored layout into the data plane's tree, devices by id.
pub fn to_layout(
    layout: &LayoutConfig,
    device_id: &dyn Fn(&str) -> Option<DeviceId>,
) -> Result<Layout, ControlError> {
    match layout {
        LayoutConfig::Linear {
            device,
            offset_bytes,
            size_bytes,
        } => Ok(Layout::Linear {
            device: device_id(device).ok_or_else(|| {
                ControlError::Internal(format!("layout names unknown device '{device}'"))
            })?,
            offset_bytes: *offset_bytes,
            size_bytes: *size_bytes,
        }),
        LayoutConfig::Concat(members) => members
            .iter()
            .map(|m| to_layout(m, device_id))
            .collect::<Result<Vec<_>, _>>()
            .map(Layout::Concat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Uid;
    use crate::testing::fake_device;

    fn devices() -> Devices {
        let mut devices = Devices::new();
        devices.insert("d1".into(), Arc::new(fake_device("/dev/d1", 1 << 20, 512)));
        devices.insert(
            "d4k".into(),
            Arc::new(fake_device("/dev/d4k", 1 << 20, 4096)),
        );
        devices
    }

    fn linear(device: &str, offset_bytes: u64, size_bytes: u64) -> LayoutConfig {
        LayoutConfig::Linear {
            device: device.into(),
            offset_bytes,
            size_bytes,
        }
    }

    fn spec(device: &str, offset_bytes: u64, size_bytes: Option<u64>) -> LayoutSpec {
        LayoutSpec::Linear(LinearSpec {
            device: device.into(),
            offset_bytes,
            size_bytes,
        })
    }

    fn volume(name: &str, layout: LayoutConfig) -> VolumeConfig {
        VolumeConfig {
            name: name.into(),
            uid: Uid(1),
            block_size: 512,
            layout,
            reservations: None,
        }
    }

    #[test]
    fn missing_size_is_rest_of_device_in_whole_blocks() {
        let resolved = resolve(&spec("d1", 4096, None), 4096, &devices()).expect("resolve");
        assert_eq!(resolved, linear("d1", 4096, (1 << 20) - 4096));
        let tail = resolve(&spec("d1", (1 << 20) - 1024, None), 4096, &devices());
        assert!(matches!(tail, Err(ControlError::Conflict(_))), "{tail:?}");
        let beyond = resolve(&spec("d1", 2 << 20, None), 512, &devices());
        assert!(
            matches!(beyond, Err(ControlError::Conflict(_))),
            "{beyond:?}"
        );
    }

    #[test]
    fn resolve_refuses_unknown_device_and_empty_concat() {
        let unknown = resolve(&spec("nope", 0, None), 512, &devices()).expect_err("unknown");
        assert_eq!(unknown.to_string(), "device 'nope' not found");
        let empty = resolve(&LayoutSpec::Concat(vec![]), 512, &devices()).expect_err("empty");
        assert!(matches!(empty, ControlError::InvalidParams(_)));
    }

    #[test]
    fn deep_layouts_are_refused() {
        let mut deep = spec("d1", 0, Some(512));
        for _ in 0..MAX_LAYOUT_DEPTH {
            deep = LayoutSpec::Concat(vec![deep]);
        }
        let error = resolve(&deep, 512, &devices()).expect_err("too deep");
        assert!(error.to_string().contains("nested"), "{error}");
    }

    #[test]
    fn extents_must_fit_and_align() {
        let d = devices();
        assert_eq!(
            check_layout("v", &linear("d1", 0, 1 << 20), 512, &d, &[]).ok(),
            Some(1 << 20)
        );
        let cases = [
            (linear("d1", 512, 1 << 20), 512, "beyond the end"),
            (
                linear("d1", 100, 512),
                512,
                "multiples of the volume block size",
            ),
            (
                linear("d1", 0, 1000),
                512,
                "multiples of the volume block size",
            ),
            (
                linear("d1", 512, 4096),
                4096,
                "multiples of the volume block size",
            ),
            (
                linear("d4k", 0, 4096),
                512,
                "smaller than the logical block size",
            ),
            (linear("d1", u64::MAX - 511, 512), 512, "beyond the end"),
        ];
        for (layout, block_size, expected) in cases {
            let error = check_layout("v", &layout, block_size, &d, &[]).expect_err(expected);
            assert!(matches!(error, ControlError::Conflict(_)), "{error:?}");
            assert!(error.to_string().contains(expected), "{error}");
        }
        let zero = check_layout("v", &linear("d1", 0, 0), 512, &d, &[]).expect_err("zero");
        assert!(matches!(zero, ControlError::InvalidParams(_)));
    }

    #[test]
    fn overlaps_are_refused() {
        let d = devices();
        let others = [volume("a", linear("d1", 4096, 4096))];
        let hit = check_layout("v", &linear("d1", 0, 8192), 512, &d, &others).expect_err("overlap");
        assert!(hit.to_string().contains("overlaps volume 'a'"), "{hit}");
        assert_eq!(
            check_layout("v", &linear("d1", 0, 4096), 512, &d, &others).ok(),
            Some(4096)
        );
        assert_eq!(
            check_layout("v", &linear("d1", 8192, 512), 512, &d, &others).ok(),
            Some(512)
        );
        let twice = LayoutConfig::Concat(vec![linear("d1", 0, 1024), linear("d1", 512, 1024)]);
        let own = check_layout("v", &twice, 512, &d, &[]).expect_err("self overlap");
        assert!(own.to_string().contains("same volume"), "{own}");
        // A volume is not compared with its own stored copy.
        let itself = [volume("v", linear("d1", 0, 4096))];
        assert!(check_layout("v", &linear("d1", 0, 4096), 512, &d, &itself).is_ok());
    }

    #[test]
    fn concat_sizes_add_up_and_compile_by_device_id() {
        let d = devices();
        let layout = LayoutConfig::Concat(vec![linear("d1", 0, 4096), linear("d4k", 4096, 8192)]);
        assert_eq!(check_layout("v", &layout, 4096, &d, &[]).ok(), Some(12288));
        let ids = |name: &str| match name {
            "d1" => Some(3),
            "d4k" => Some(5),
            _ => None,
        };
        let compiled = to_layout(&layout, &ids).expect("compile");
        assert_eq!(
            compiled,
            Layout::Concat(vec![
                Layout::Linear {
                    device: 3,
                    offset_bytes: 0,
                    size_bytes: 4096
                },
                Layout::Linear {
                    device: 5,
                    offset_bytes: 4096,
                    size_bytes: 8192
                },
            ])
        );
        let spec_back = to_spec(&layout);
        assert_eq!(resolve(&spec_back, 4096, &d).expect("resolve"), layout);
    }

    #[test]
    fn block_sizes() {
        assert!(check_block_size(512).is_ok());
        assert!(check_block_size(4096).is_ok());
        let error = check_block_size(1024).expect_err("1024");
        assert!(matches!(error, ControlError::InvalidParams(_)));
        assert!(error.to_string().contains("block_size 1024"));
    }
}
