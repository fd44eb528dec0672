//! The calls and answers of the access subcommands: `target auth`, `target acl`,
//! `discovery ...` and `portal ...`. Answers never carry secrets, so nothing printed does.

use lunar_api::auth::{ChapInfo, DiscoveryAuthInfo};
use lunar_api::method;
use lunar_api::portal::{PortalInfo, PortalListResult};
use lunar_api::target::TargetInfo;
use serde_json::{json, Value};

use crate::args::{AuthArgs, DiscoveryCommand, PortalCommand};
use crate::commands::{call, typed, Call};
use crate::table::render;

/// The `chap` and `mutual_chap` parameters of `args` (`null` with --none).
fn auth_params(args: &AuthArgs) -> Value {
    let credentials = |user: &Option<String>, secret: &Option<String>| match (user, secret) {
        (Some(username), Some(secret)) => json!({"username": username, "secret": secret}),
        _ => Value::Null,
    };
    json!({
        "chap": credentials(&args.chap_user, &args.chap_secret),
        "mutual_chap": credentials(&args.mutual_user, &args.mutual_secret),
    })
}

pub fn target_auth_call(iqn: &str, args: &AuthArgs) -> Call {
    let mut params = auth_params(args);
    params["iqn"] = json!(iqn);
    call(method::TARGET_AUTH_SET, params)
}

pub fn target_acl_call(iqn: &str, initiators: &[String]) -> Call {
    call(
        method::TARGET_ACL_SET,
        json!({"iqn": iqn, "initiators": initiators}),
    )
}

pub fn discovery_call(command: &DiscoveryCommand) -> Call {
    match command {
        DiscoveryCommand::Auth(args) => call(method::DISCOVERY_AUTH_SET, auth_params(args)),
        DiscoveryCommand::Show => call(method::DISCOVERY_AUTH_GET, json!({})),
    }
}

pub fn portal_call(command: &PortalCommand) -> Call {
    match command {
        PortalCommand::Add { address } => call(method::PORTAL_ADD, json!({"address": address})),
        PortalCommand::Remove { address } => {
            call(method::PORTAL_REMOVE, json!({"address": address}))
        }
        PortalCommand::List => call(method::PORTAL_LIST, json!({})),
    }
}

/// `CHAP one-way, initiator user 'u'`, `CHAP mutual, ...`, `no authentication`.
pub fn auth_text(chap: Option<&ChapInfo>, mutual: Option<&ChapInfo>) -> String {
    match (chap, mutual) {
        (None, _) => "no authentication".to_string(),
        (Some(chap), None) => format!("CHAP one-way, initiator user '{}'", chap.username),
        (Some(chap), Some(mutual)) => format!(
            "CHAP mutual, initiator user '{}', target user '{}'",
            chap.username, mutual.username
        ),
    }
}

/// The AUTH column of `target list`: `none`, `chap`, `mutual`.
pub fn auth_column(target: &TargetInfo) -> &'static str {
    match (&target.chap, &target.mutual_chap) {
        (None, _) => "none",
        (Some(_), None) => "chap",
        (Some(_), Some(_)) => "mutual",
    }
}

/// The INITIATORS column of `target list`: `any` or the names.
pub fn initiators_column(target: &TargetInfo) -> String {
    if target.initiators.is_empty() {
        "any".to_string()
    } else {
        target.initiators.join(",")
    }
}

pub fn show_target_auth(result: &Value) -> Result<String, String> {
    let target: TargetInfo = typed(result)?;
    Ok(format!(
        "target {}: {}",
        target.iqn,
        auth_text(target.chap.as_ref(), target.mutual_chap.as_ref())
    ))
}

pub fn show_target_acl(result: &Value) -> Result<String, String> {
    let target: TargetInfo = typed(result)?;
    Ok(if target.initiators.is_empty() {
        format!("target {}: every initiator allowed", target.iqn)
    } else {
        format!(
            "target {}: only {} allowed",
            target.iqn,
            target.initiators.join(", ")
        )
    })
}

pub fn show_discovery(result: &Value) -> Result<String, String> {
    let info: DiscoveryAuthInfo = typed(result)?;
    Ok(format!(
        "discovery: {}",
        auth_text(info.chap.as_ref(), info.mutual_chap.as_ref())
    ))
}

pub fn show_portal(command: &PortalCommand, result: &Value) -> Result<String, String> {
    Ok(match command {
        PortalCommand::Add { .. } => {
            let portal: PortalInfo = typed(result)?;
            format!("portal {} added", portal.address)
        }
        PortalCommand::Remove { address } => format!("portal {address} removed"),
        PortalCommand::List => {
            let list: PortalListResult = typed(result)?;
            let yes_no = |flag: bool| if flag { "yes" } else { "no" }.to_string();
            let rows = list
                .portals
                .iter()
                .map(|p| vec![p.address.clone(), yes_no(p.listening), yes_no(p.persistent)])
                .collect::<Vec<_>>();
            render(&["ADDRESS", "LISTENING", "SAVED"], &rows)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command, TargetCommand};
    use crate::commands::{call_for, show};
    use clap::Parser;

    fn command(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("lunarctl").chain(args.iter().copied()))
            .expect("parse")
            .command
    }

    #[test]
    fn auth_calls() {
        let c = call_for(&command(&[
            "target",
            "auth",
            "iqn.t",
            "--chap-user",
            "u",
            "--chap-secret",
            "initiator-secret",
        ]))
        .expect("call");
        assert_eq!(c.method, "target_auth_set");
        assert_eq!(
            c.params,
            json!({"iqn": "iqn.t", "chap": {"username": "u", "secret": "initiator-secret"}, "mutual_chap": null})
        );
        let c = call_for(&command(&["target", "auth", "iqn.t", "--none"])).expect("call");
        assert_eq!(
            c.params,
            json!({"iqn": "iqn.t", "chap": null, "mutual_chap": null})
        );
        let c = call_for(&command(&[
            "discovery",
            "auth",
            "--chap-user",
            "u",
            "--chap-secret",
            "s1",
            "--mutual-user",
            "t",
            "--mutual-secret",
            "s2",
        ]))
        .expect("call");
        assert_eq!(c.method, "discovery_auth_set");
        assert_eq!(
            c.params,
            json!({"chap": {"username": "u", "secret": "s1"}, "mutual_chap": {"username": "t", "secret": "s2"}})
        );
        let c = call_for(&command(&["discovery", "show"])).expect("call");
        assert_eq!(
            (c.method.as_str(), c.params),
            ("discovery_auth_get", json!({}))
        );
    }

    #[test]
    fn acl_and_portal_calls() {
        let c = call_for(&Command::Target(TargetCommand::Acl {
            iqn: "iqn.t".into(),
            initiators: vec!["iqn.a".into()],
        }))
        .expect("call");
        assert_eq!(
            (c.method.as_str(), c.params),
            (
                "target_acl_set",
                json!({"iqn": "iqn.t", "initiators": ["iqn.a"]})
            )
        );
        let c = call_for(&command(&["target", "acl", "iqn.t"])).expect("call");
        assert_eq!(c.params, json!({"iqn": "iqn.t", "initiators": []}));
        let c = call_for(&command(&["portal", "add", "[::1]:3261"])).expect("call");
        assert_eq!(
            (c.method.as_str(), c.params),
            ("portal_add", json!({"address": "[::1]:3261"}))
        );
        let c = call_for(&command(&["portal", "remove", "10.0.0.1:3260"])).expect("call");
        assert_eq!(c.method, "portal_remove");
        let c = call_for(&command(&["portal", "list"])).expect("call");
        assert_eq!(c.method, "portal_list");
    }

    #[test]
    fn answers_are_shown_by_user_name() {
        let target = json!({"iqn": "iqn.t", "luns": [], "initiators": [],
            "chap": {"username": "u", "secret_set": true},
            "mutual_chap": {"username": "lunar", "secret_set": true}});
        let text = show(
            &command(&["target", "auth", "iqn.t", "--none"]),
            &target,
            false,
        )
        .expect("show");
        assert_eq!(
            text,
            "target iqn.t: CHAP mutual, initiator user 'u', target user 'lunar'"
        );
        let off = json!({"iqn": "iqn.t", "luns": []});
        let text = show(
            &command(&["target", "auth", "iqn.t", "--none"]),
            &off,
            false,
        )
        .expect("show");
        assert_eq!(text, "target iqn.t: no authentication");
        let text = show(&command(&["target", "acl", "iqn.t"]), &off, false).expect("show");
        assert_eq!(text, "target iqn.t: every initiator allowed");
        let listed = json!({"iqn": "iqn.t", "luns": [], "initiators": ["iqn.a", "iqn.b"]});
        let text = show(
            &command(&["target", "acl", "iqn.t", "iqn.a"]),
            &listed,
            false,
        )
        .expect("show");
        assert_eq!(text, "target iqn.t: only iqn.a, iqn.b allowed");
        let discovery = json!({"chap": {"username": "d", "secret_set": true}, "mutual_chap": null});
        let text = show(&command(&["discovery", "show"]), &discovery, false).expect("show");
        assert_eq!(text, "discovery: CHAP one-way, initiator user 'd'");
    }

    #[test]
    fn portal_answers() {
        let list = json!({"portals": [
            {"address": "127.0.0.1:3260", "listening": true, "persistent": false},
            {"address": "10.0.0.1:3260", "listening": false, "persistent": true}
        ]});
        let text = show(&command(&["portal", "list"]), &list, false).expect("show");
        assert_eq!(
            text,
            "ADDRESS         LISTENING  SAVED\n127.0.0.1:3260  yes        no\n10.0.0.1:3260   no         yes\n"
        );
        let added = json!({"address": "0.0.0.0:40001", "listening": true, "persistent": true});
        let text = show(&command(&["portal", "add", "0.0.0.0:0"]), &added, false).expect("show");
        assert_eq!(text, "portal 0.0.0.0:40001 added");
    }
}
