//! libiscsi's command-line clients (`iscsi-ls`, `iscsi-inq`, `iscsi-readcapacity16`), each run
//! under a timeout, and parsers for the bits of their output the tests check.

use std::process::Command;
use std::time::Duration;

use crate::process::{run_with_timeout, ToolOutput};

/// Timeout for one quick libiscsi tool run.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// `iscsi://<portal>/<iqn>/<lun>`.
pub fn iscsi_url(portal: &str, iqn: &str, lun: u32) -> String {
    format!("iscsi://{portal}/{iqn}/{lun}")
}

/// `iscsi-ls -s iscsi://<portal>`: discovery (SendTargets) and the LUNs of each target.
pub fn iscsi_ls(portal: &str) -> ToolOutput {
    let mut cmd = Command::new("iscsi-ls");
    cmd.arg("-s").arg(format!("iscsi://{portal}"));
    run_with_timeout(cmd, TOOL_TIMEOUT)
}

/// `iscsi-inq <url>`: standard INQUIRY.
pub fn iscsi_inq(url: &str) -> ToolOutput {
    let mut cmd = Command::new("iscsi-inq");
    cmd.arg(url);
    run_with_timeout(cmd, TOOL_TIMEOUT)
}

/// `iscsi-readcapacity16 <url>`.
pub fn iscsi_readcapacity16(url: &str) -> ToolOutput {
    let mut cmd = Command::new("iscsi-readcapacity16");
    cmd.arg(url);
    run_with_timeout(cmd, TOOL_TIMEOUT)
}

/// The target names in `iscsi-ls` output (`Target:<iqn> Portal:<addr>,<tpgt>` lines).
pub fn parse_ls_targets(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Target:"))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Capacity from `iscsi-readcapacity16`: (`Total size` in bytes, logical block length in bytes).
pub fn parse_readcapacity16(output: &str) -> Option<(u64, u32)> {
    let mut total = None;
    let mut block_len = None;
    for line in output.lines() {
        if let Some(value) = line.trim().strip_prefix("Total size:") {
            total = value.trim().parse().ok();
        } else if let Some(value) = line.trim().strip_prefix("LOGICAL BLOCK LENGTH IN BYTES:") {
            block_len = value.trim().parse().ok();
        }
    }
    Some((total?, block_len?))
}

/// A field of `iscsi-inq` output, e.g. `Peripheral Device Type` -> `DIRECT_ACCESS`.
pub fn parse_inq_field<'a>(output: &'a str, field: &str) -> Option<&'a str> {
    output.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == field).then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_ls_output() {
        let out = "Target:iqn.2026-11.test:tgt Portal:127.0.0.1:3261,1\nLun:1    Type:DIRECT_ACCESS (Size:63M)\n";
        assert_eq!(
            parse_ls_targets(out),
            vec!["iqn.2026-11.test:tgt".to_string()]
        );
        assert!(parse_ls_targets("iscsi_discovery failed").is_empty());
    }

    #[test]
    fn parses_readcapacity16_output() {
        let out = "RETURNED LOGICAL BLOCK ADDRESS:131071\nLOGICAL BLOCK LENGTH IN BYTES:512\nP_TYPE:0 PROT_EN:0\nTotal size:67108864\n";
        assert_eq!(parse_readcapacity16(out), Some((67_108_864, 512)));
        assert_eq!(parse_readcapacity16("Total size:12\n"), None);
    }

    #[test]
    fn parses_inq_fields() {
        let out = "Peripheral Qualifier:CONNECTED\nPeripheral Device Type:DIRECT_ACCESS\nVendor:IET     \n";
        assert_eq!(
            parse_inq_field(out, "Peripheral Device Type"),
            Some("DIRECT_ACCESS")
        );
        assert_eq!(parse_inq_field(out, "Vendor"), Some("IET"));
        assert_eq!(parse_inq_field(out, "Product"), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in ".*(\n.*){0,5}") {
            let _ = parse_ls_targets(&text);
            let _ = parse_readcapacity16(&text);
            let _ = parse_inq_field(&text, "Vendor");
        }
    }
}
