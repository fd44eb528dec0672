//! Layout JSON → [`VolumeMap`]: the schema of the RPC's `layout` field
//! (`{"linear":{"device":"name","offset_bytes":N,"size_bytes":N}}`, `{"concat":[LAYOUT,...]}`,
//! `{"stripe":{"unit_bytes":N,"members":[LAYOUT,...]}}`), parsed with the daemon's own types.
//! Mirror and thin nodes are refused: a mirrored byte has several places and a thin segment's
//! place changes with every allocation, so neither resolves to one extent on the host. Device names become indices in order of first
//! appearance (depth first, members in order), which is the device list a caller can read.

use std::collections::HashMap;
use std::ffi::CString;

use lunar_api::volume::LayoutSpec;
use lunar_volume::{DeviceId, Layout, LayoutPath, VolumeMap};

/// A compiled layout and the names of the devices it uses; `Extent::device` indexes `devices`.
#[derive(Debug)]
pub struct ParsedLayout {
    pub map: VolumeMap,
    pub devices: Vec<CString>,
}

/// Parse and validate a layout; the error is a sentence for a person.
pub fn parse_layout(json: &str) -> Result<ParsedLayout, String> {
    let spec: LayoutSpec =
        serde_json::from_str(json).map_err(|e| format!("layout is not valid layout JSON: {e}"))?;
    let mut names = DeviceNames::default();
    let layout = convert(&spec, &mut Vec::new(), &mut names)?;
    let map = VolumeMap::try_new(layout).map_err(|e| format!("layout is not usable: {e}"))?;
    Ok(ParsedLayout {
        map,
        devices: names.in_order,
    })
}

#[derive(Default)]
struct DeviceNames {
    index_of: HashMap<String, DeviceId>,
    in_order: Vec<CString>,
}

impl DeviceNames {
    fn index(&mut self, name: &str, at: &[usize]) -> Result<DeviceId, String> {
        if let Some(index) = self.index_of.get(name) {
            return Ok(*index);
        }
        let index = DeviceId::try_from(self.in_order.len())
            .map_err(|_| "layout names more than 2^32 devices".to_string())?;
        let c_name = CString::new(name)
            .map_err(|_| format!("{}: device name contains a NUL character", path(at)))?;
        self.in_order.push(c_name);
        self.index_of.insert(name.to_string(), index);
        Ok(index)
    }
}

fn path(at: &[usize]) -> String {
    let path = LayoutPath {
        member_indices: at.to_vec(),
    };
    format!("layout is not usable: layout node {path}")
}

/// Convert one node; `at` is its path (member indices from the root). Recursion is bounded by
/// serde_json's nesting limit; depth is checked again by `VolumeMap::try_new`.
fn convert(
    spec: &LayoutSpec,
    at: &mut Vec<usize>,
    names: &mut DeviceNames,
) -> Result<Layout, String> {
    match spec {
        LayoutSpec::Linear(linear) => {
            let size_bytes = linear.size_bytes.ok_or_else(|| {
                format!(
                    "{}: linear extent on device '{}' has no size_bytes (host-side resolution \
                     needs every size; volume_list results carry them)",
                    path(at),
                    linear.device
                )
            })?;
            Ok(Layout::Linear {
                device: names.index(&linear.device, at)?,
                offset_bytes: linear.offset_bytes,
                size_bytes,
            })
        }
        LayoutSpec::Concat(members) => Ok(Layout::Concat(convert_members(members, at, names)?)),
        LayoutSpec::Stripe(stripe) => Ok(Layout::Stripe {
            unit_bytes: stripe.unit_bytes,
            members: convert_members(&stripe.members, at, names)?,
        }),
        LayoutSpec::Mirror(_) => Err(format!(
            "{}: a mirror has several places for each byte; host-side resolution covers linear, concat and stripe layouts",
            path(at)
        )),
        LayoutSpec::Thin(_) => Err(format!(
            "{}: thin segments are placed by the daemon as they are written; host-side resolution covers linear, concat and stripe layouts",
            path(at)
        )),
    }
}

fn convert_members(
    members: &[LayoutSpec],
    at: &mut Vec<usize>,
    names: &mut DeviceNames,
) -> Result<Vec<Layout>, String> {
    let mut converted = Vec::with_capacity(members.len());
    for (index, member) in members.iter().enumerate() {
        at.push(index);
        let result = convert(member, at, names);
        at.pop();
        converted.push(result?);
    }
    Ok(converted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(parsed: &ParsedLayout) -> Vec<&str> {
        parsed.devices.iter().map(|n| n.to_str().unwrap()).collect()
    }

    #[test]
    fn devices_are_numbered_by_first_appearance() {
        let parsed = parse_layout(
            r#"{"concat":[
                {"linear":{"device":"b","offset_bytes":0,"size_bytes":10}},
                {"concat":[{"linear":{"device":"a","size_bytes":5}},
                           {"linear":{"device":"b","offset_bytes":100,"size_bytes":5}}]}]}"#,
        )
        .unwrap();
        assert_eq!(names(&parsed), ["b", "a"]);
        assert_eq!(parsed.map.size_bytes, 20);
        assert_eq!(
            parsed.map.root,
            Layout::Concat(vec![
                Layout::Linear {
                    device: 0,
                    offset_bytes: 0,
                    size_bytes: 10
                },
                Layout::Concat(vec![
                    Layout::Linear {
                        device: 1,
                        offset_bytes: 0,
                        size_bytes: 5
                    },
                    Layout::Linear {
                        device: 0,
                        offset_bytes: 100,
                        size_bytes: 5
                    },
                ]),
            ])
        );
    }

    #[test]
    fn missing_size_names_the_node_and_device() {
        let err = parse_layout(
            r#"{"concat":[{"linear":{"device":"d0","size_bytes":1}},{"linear":{"device":"d1"}}]}"#,
        )
        .unwrap_err();
        assert!(
            err.starts_with("layout is not usable: layout node root[1]: linear extent on device 'd1' has no size_bytes"),
            "{err}"
        );
    }

    #[test]
    fn malformed_json_and_unknown_fields_are_refused() {
        for bad in [
            "",
            "{",
            "[]",
            r#"{"stripe":[]}"#,
            r#"{"linear":{"device":"d","size_bytes":1,"offset":3}}"#,
            r#"{"linear":{"device":"d","size_bytes":-1}}"#,
            r#"{"linear":{"device":"d","size_bytes":1},"concat":[]}"#,
        ] {
            let err = parse_layout(bad).unwrap_err();
            assert!(
                err.starts_with("layout is not valid layout JSON"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn invalid_trees_are_explained() {
        let err = parse_layout(r#"{"concat":[]}"#).unwrap_err();
        assert_eq!(
            err,
            "layout is not usable: layout node root: concat has no members"
        );
        let err = parse_layout(r#"{"linear":{"device":"d","size_bytes":0}}"#).unwrap_err();
        assert_eq!(
            err,
            "layout is not usable: layout node root: linear extent on device 0 has size 0"
        );
    }

    #[test]
    fn stripes_resolve_and_mirrors_and_thin_nodes_are_refused() {
        let parsed = parse_layout(
            r#"{"stripe":{"unit_bytes":4096,"members":[
                {"linear":{"device":"a","size_bytes":8192}},
                {"linear":{"device":"b","size_bytes":8192}}]}}"#,
        )
        .unwrap();
        assert_eq!(names(&parsed), ["a", "b"]);
        assert_eq!(parsed.map.size_bytes, 16384);
        let mirror =
            parse_layout(r#"{"mirror":{"legs":[{"linear":{"device":"a","size_bytes":1}}]}}"#)
                .unwrap_err();
        assert!(mirror.contains("several places"), "{mirror}");
        let thin =
            parse_layout(r#"{"concat":[{"thin":{"pool":"p","size_bytes":4096}}]}"#).unwrap_err();
        assert!(
            thin.starts_with("layout is not usable: layout node root[0]: thin"),
            "{thin}"
        );
    }

    #[test]
    fn nul_in_device_name_is_refused() {
        let err = parse_layout(r#"{"linear":{"device":"a\u0000b","size_bytes":1}}"#).unwrap_err();
        assert!(err.contains("NUL"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_without_crashing() {
        let depth = 10_000;
        let json = format!(
            "{}{}{}",
            r#"{"concat":["#.repeat(depth),
            r#"{"linear":{"device":"d","size_bytes":1}}"#,
            "]}".repeat(depth)
        );
        assert!(parse_layout(&json).is_err());
    }
}
