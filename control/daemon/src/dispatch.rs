//! Method dispatch: decode a call's parameters into the method's type, run it on the
//! controller, encode the result. Parameter decoding errors become `INVALID_PARAMS` naming the
//! field; controller errors keep their own codes.

use lunar_api::{code, method, RpcError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::controller::Controller;
use crate::error::ControlError;

/// Execute `method` with `params` on the controller.
pub fn dispatch(
    controller: &mut Controller,
    method_name: &str,
    params: Option<Value>,
) -> Result<Value, RpcError> {
    let c = controller;
    match method_name {
        method::DEVICE_ADD => run(method_name, params, |p| c.device_add(p)),
        method::DEVICE_LIST => run(method_name, params, |p| c.device_list(p)),
        method::DEVICE_REMOVE => run(method_name, params, |p| c.device_remove(p)),
        method::VOLUME_CREATE => run(method_name, params, |p| c.volume_create(p)),
        method::VOLUME_LIST => run(method_name, params, |p| c.volume_list(p)),
        method::VOLUME_DELETE => run(method_name, params, |p| c.volume_delete(p)),
        method::VOLUME_SNAPSHOT_CREATE => run(method_name, params, |p| c.volume_snapshot_create(p)),
        method::VOLUME_CLONE_CREATE => run(method_name, params, |p| c.volume_clone_create(p)),
        method::VOLUME_RESIZE => run(method_name, params, |p| c.volume_resize(p)),
        method::POOL_CREATE => run(method_name, params, |p| c.pool_create(p)),
        method::POOL_LIST => run(method_name, params, |p| c.pool_list(p)),
        method::POOL_DELETE => run(method_name, params, |p| c.pool_delete(p)),
        method::TARGET_CREATE => run(method_name, params, |p| c.target_create(p)),
        method::TARGET_LIST => run(method_name, params, |p| c.target_list(p)),
        method::TARGET_DELETE => run(method_name, params, |p| c.target_delete(p)),
        method::TARGET_AUTH_SET => run(method_name, params, |p| c.target_auth_set(p)),
        method::TARGET_ACL_SET => run(method_name, params, |p| c.target_acl_set(p)),
        method::DISCOVERY_AUTH_SET => run(method_name, params, |p| c.discovery_auth_set(p)),
        method::DISCOVERY_AUTH_GET => run(method_name, params, |p| c.discovery_auth_get(p)),
        method::PORTAL_ADD => run(method_name, params, |p| c.portal_add(p)),
        method::PORTAL_REMOVE => run(method_name, params, |p| c.portal_remove(p)),
        method::PORTAL_LIST => run(method_name, params, |p| c.portal_list(p)),
        method::STATS_GET => run(method_name, params, |p| c.stats_get(p)),
        method::MIRROR_LEG_ADD => run(method_name, params, |p| c.mirror_leg_add(p)),
        method::MIRROR_LEG_REMOVE => run(method_name, params, |p| c.mirror_leg_remove(p)),
        method::MIRROR_LEG_REJOIN => run(method_name, params, |p| c.mirror_leg_rejoin(p)),
        method::VOLUME_MIGRATE => run(method_name, params, |p| c.volume_migrate(p)),
        method::TASK_GET => run(method_name, params, |p| c.task_get(p)),
        method::TASK_LIST => run(method_name, params, |p| c.task_list(p)),
        method::DAEMON_INFO => run(method_name, params, |_: lunar_api::Empty| {
            Ok(c.daemon_info())
        }),
        _ => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!(
                "unknown method '{}'; methods are: {}",
                method_name.escape_debug(),
                method::ALL.join(", ")
            ),
        )),
    }
}

fn run<P, R>(
    method_name: &str,
    params: Option<Value>,
    call: impl FnOnce(P) -> Result<R, ControlError>,
) -> Result<Value, RpcError>
where
    P: DeserializeOwned,
    R: Serialize,
{
    let params = decode_params(method_name, params)?;
    let result = call(params).map_err(|e| e.to_rpc())?;
    serde_json::to_value(result).map_err(|e| {
        RpcError::new(
            code::INTERNAL_ERROR,
            format!("cannot encode the result of {method_name}: {e}"),
        )
    })
}

/// Parameters must be a JSON object (absent means `{}`).
pub fn decode_params<P: DeserializeOwned>(
    method_name: &str,
    params: Option<Value>,
) -> Result<P, RpcError> {
    let object = match params {
        None => Value::Object(serde_json::Map::new()),
        Some(object @ Value::Object(_)) => object,
        Some(_) => {
            return Err(RpcError::new(
                code::INVALID_PARAMS,
                format!("params of {method_name} must be a JSON object with named fields"),
            ))
        }
    };
    serde_json::from_value(object).map_err(|e| {
        RpcError::new(
            code::INVALID_PARAMS,
            format!("invalid params for {method_name}: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::controller;
    use serde_json::json;

    fn call(c: &mut Controller, method_name: &str, params: Value) -> Result<Value, RpcError> {
        dispatch(c, method_name, Some(params))
    }

    #[test]
    fn methods_round_trip_through_json() {
        let (mut c, _, _) = controller();
        let device = call(
            &mut c,
            "device_add",
            json!({"name": "disk1", "path": "/dev/disk1"}),
        )
        .expect("device_add");
        assert_eq!(device["size_bytes"], json!(1u64 << 30));
        assert_eq!(device["block_size"], json!(512));
        assert_eq!(device["direct"], json!(true));
        assert_eq!(device["kind"], json!("file"));
        let volume = call(
            &mut c,
            "volume_create",
            json!({"name": "v", "layout": {"linear": {"device": "disk1", "offset_bytes": 0, "size_bytes": 1048576}}}),
        )
        .expect("volume_create");
        assert_eq!(volume["size_bytes"], json!(1048576));
        assert_eq!(volume["block_size"], json!(512));
        let concat = call(
            &mut c,
            "volume_create",
            json!({"name": "c", "block_size": 4096, "layout": {"concat": [
                {"linear": {"device": "disk1", "offset_bytes": 1048576, "size_bytes": 4096}},
                {"linear": {"device": "disk1", "offset_bytes": 2097152, "size_bytes": 8192}}
            ]}}),
        )
        .expect("concat");
        assert_eq!(concat["size_bytes"], json!(12288));
        let target = call(
            &mut c,
            "target_create",
            json!({"iqn": "iqn.2026-11.dev.lunar:t", "luns": [{"lun": 0, "volume": "v", "read_only": true}]}),
        )
        .expect("target_create");
        assert_eq!(target["luns"][0]["read_only"], json!(true));
        let listed = dispatch(&mut c, "volume_list", None).expect("volume_list");
        assert_eq!(listed["volumes"].as_array().map(Vec::len), Some(2));
        let info = call(&mut c, "daemon_info", json!({})).expect("info");
        assert_eq!(info["generation"], json!(c.generation()));
        let stats = call(&mut c, "stats_get", json!({"volume": "v"})).expect("stats");
        assert_eq!(stats["volumes"][0]["name"], json!("v"));
        let removed = call(
            &mut c,
            "target_delete",
            json!({"iqn": "iqn.2026-11.dev.lunar:t"}),
        )
        .expect("target_delete");
        assert_eq!(removed, json!({}));
    }

    #[test]
    fn pool_snapshot_clone_and_resize_methods_round_trip_through_json() {
        let (mut c, _, _) = controller();
        call(
            &mut c,
            "device_add",
            json!({"name": "disk2", "path": "/dev/disk2"}),
        )
        .expect("device_add");
        let pool = call(
            &mut c,
            "pool_create",
            json!({"name": "p", "devices": ["disk2"], "segment_bytes": 65536}),
        )
        .expect("pool_create");
        assert_eq!(pool["free_bytes"], json!(1u64 << 30));
        let thin = call(
            &mut c,
            "volume_create",
            json!({"name": "t", "layout": {"thin": {"pool": "p", "size_bytes": 1048576}}}),
        )
        .expect("thin volume");
        assert_eq!(thin["layout"]["thin"]["allocated_bytes"], json!(0));
        let snapshot = call(
            &mut c,
            "volume_snapshot_create",
            json!({"volume": "t", "name": "s"}),
        )
        .expect("snapshot");
        assert_eq!(snapshot["snapshot"], json!(true));
        assert_eq!(snapshot["snapshot_of"], json!("t"));
        let clone = call(
            &mut c,
            "volume_clone_create",
            json!({"snapshot": "s", "name": "k"}),
        )
        .expect("clone");
        assert_eq!(clone["clone_of"], json!("s"));
        let grown = call(
            &mut c,
            "volume_resize",
            json!({"name": "k", "size_bytes": 2097152}),
        )
        .expect("resize");
        assert_eq!(grown["size_bytes"], json!(2097152));
        let pools = call(&mut c, "pool_list", json!({})).expect("pool_list");
        assert_eq!(pools["pools"][0]["used_by"], json!(["k", "s", "t"]));
        let busy = call(&mut c, "pool_delete", json!({"name": "p"})).expect_err("in use");
        assert_eq!(busy.code, code::IN_USE);
    }

    #[test]
    fn access_and_portal_methods_round_trip_through_json() {
        let (mut c, _, _) = controller();
        call(
            &mut c,
            "device_add",
            json!({"name": "disk1", "path": "/dev/disk1"}),
        )
        .expect("device_add");
        call(
            &mut c,
            "volume_create",
            json!({"name": "v", "layout": {"linear": {"device": "disk1", "size_bytes": 1048576}}}),
        )
        .expect("volume_create");
        let iqn = "iqn.2026-11.dev.lunar:t";
        call(
            &mut c,
            "target_create",
            json!({"iqn": iqn, "luns": [{"lun": 0, "volume": "v"}]}),
        )
        .expect("target_create");
        let secret = "sixteen-byte-key";
        let target = call(
            &mut c,
            "target_auth_set",
            json!({"iqn": iqn, "chap": {"username": "u", "secret": secret},
                   "mutual_chap": {"username": "t", "secret": "another-secret"}}),
        )
        .expect("target_auth_set");
        assert_eq!(target["chap"], json!({"username": "u", "secret_set": true}));
        assert_eq!(
            target["mutual_chap"],
            json!({"username": "t", "secret_set": true})
        );
        let target = call(
            &mut c,
            "target_acl_set",
            json!({"iqn": iqn, "initiators": ["iqn.2026-11.a.b:Host"]}),
        )
        .expect("target_acl_set");
        assert_eq!(target["initiators"], json!(["iqn.2026-11.a.b:host"]));
        let listed = dispatch(&mut c, "target_list", None).expect("target_list");
        assert!(!listed.to_string().contains(secret), "{listed}");
        assert_eq!(listed["targets"][0]["chap"]["username"], json!("u"));
        let discovery = call(
            &mut c,
            "discovery_auth_set",
            json!({"chap": {"username": "d", "secret": secret}}),
        )
        .expect("discovery_auth_set");
        assert_eq!(
            discovery,
            json!({"chap": {"username": "d", "secret_set": true}, "mutual_chap": null})
        );
        let discovery = dispatch(&mut c, "discovery_auth_get", None).expect("get");
        assert_eq!(discovery["chap"]["username"], json!("d"));
        let portal =
            call(&mut c, "portal_add", json!({"address": "10.1.2.3:3260"})).expect("portal_add");
        assert_eq!(
            portal,
            json!({"address": "10.1.2.3:3260", "listening": true, "persistent": true})
        );
        let portals = dispatch(&mut c, "portal_list", None).expect("portal_list");
        assert_eq!(portals["portals"].as_array().map(Vec::len), Some(2));
        let removed = call(&mut c, "portal_remove", json!({"address": "10.1.2.3:3260"}))
            .expect("portal_remove");
        assert_eq!(removed, json!({}));
    }

    #[test]
    fn access_params_are_checked() {
        let (mut c, _, _) = controller();
        let cases = [
            (
                "target_auth_set",
                json!({"iqn": "iqn.2026-11.a.b"}),
                "missing field `chap`",
            ),
            (
                "target_auth_set",
                json!({"iqn": "iqn.2026-11.a.b", "chap": {"user": "u", "secret": "s"}}),
                "unknown field `user`",
            ),
            (
                "target_acl_set",
                json!({"iqn": "iqn.2026-11.a.b"}),
                "missing field `initiators`",
            ),
            ("discovery_auth_set", json!({}), "missing field `chap`"),
            (
                "portal_add",
                json!({"addr": "1.2.3.4:1"}),
                "unknown field `addr`",
            ),
            (
                "portal_add",
                json!({"address": "host:3260"}),
                "portal address 'host:3260' is not ip:port",
            ),
        ];
        for (method_name, params, expected) in cases {
            let error = call(&mut c, method_name, params.clone()).expect_err(method_name);
            assert_eq!(error.code, code::INVALID_PARAMS, "{params}");
            assert!(
                error.message.contains(expected),
                "{params}: {}",
                error.message
            );
        }
    }

    #[test]
    fn unknown_method() {
        let (mut c, _, _) = controller();
        let error = call(&mut c, "volume_explode", json!({})).expect_err("unknown");
        assert_eq!(error.code, code::METHOD_NOT_FOUND);
        assert!(error.message.contains("volume_explode"));
        assert!(error.message.contains("volume_create"));
    }

    #[test]
    fn bad_params_name_the_field() {
        let (mut c, _, _) = controller();
        let cases = [
            ("device_add", json!({"name": "d"}), "missing field `path`"),
            (
                "device_add",
                json!({"name": "d", "path": "/x", "pth": 1}),
                "unknown field `pth`",
            ),
            (
                "device_add",
                json!({"name": 5, "path": "/x"}),
                "invalid type: integer `5`",
            ),
            (
                "volume_create",
                json!({"name": "v", "layout": {"raid5": {}}}),
                "unknown variant `raid5`",
            ),
            (
                "volume_create",
                json!({"name": "v", "layout": {"stripe": {}}}),
                "missing field `unit_bytes`",
            ),
            (
                "volume_create",
                json!({"name": "v", "layout": {"linear": {"device": "d", "offset_bytes": -1}}}),
                "invalid value: integer `-1`",
            ),
            (
                "target_create",
                json!({"iqn": "iqn.2026-11.a.b"}),
                "missing field `luns`",
            ),
            (
                "device_list",
                json!({"verbose": true}),
                "unknown field `verbose`",
            ),
        ];
        for (method_name, params, expected) in cases {
            let error = call(&mut c, method_name, params.clone()).expect_err(method_name);
            assert_eq!(error.code, code::INVALID_PARAMS, "{params}");
            assert!(
                error.message.contains(expected),
                "{params}: {}",
                error.message
            );
            assert!(error.message.contains(method_name), "{}", error.message);
        }
        let positional =
            dispatch(&mut c, "device_add", Some(json!(["d", "/x"]))).expect_err("array");
        assert_eq!(positional.code, code::INVALID_PARAMS);
        assert!(positional.message.contains("must be a JSON object"));
    }

    #[test]
    fn domain_errors_keep_their_codes() {
        let (mut c, _, _) = controller();
        let error = call(&mut c, "device_remove", json!({"name": "disk1"})).expect_err("missing");
        assert_eq!(error.code, code::NOT_FOUND);
        assert_eq!(error.message, "device 'disk1' not found");
        let error =
            call(&mut c, "target_create", json!({"iqn": "nope", "luns": []})).expect_err("bad iqn");
        assert_eq!(error.code, code::INVALID_PARAMS);
    }
}
