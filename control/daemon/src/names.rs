//! Syntax of the names users give: device and volume names, and iSCSI target names
//! (RFC 7143 §4.2.7 / RFC 3720 §3.2.6: `iqn.`, `eui.` and `naa.` formats).
//!
//! Checks here depend only on the string, never on the daemon's state; a failure is an
//! "invalid params" error.

/// Longest device or volume name, in bytes.
pub const MAX_OBJECT_NAME_BYTES: usize = 64;
/// Longest iSCSI name, in bytes (RFC 7143 §6.1).
pub const MAX_ISCSI_NAME_BYTES: usize = 223;

/// Check a device or volume name: 1-64 characters from `A-Z a-z 0-9 . _ -`, starting with a
/// letter or digit. `kind` names the object in the message ("device", "volume").
pub fn check_object_name(kind: &str, name: &str) -> Result<(), String> {
    let rule = format!(
        "use 1-{MAX_OBJECT_NAME_BYTES} characters from A-Z a-z 0-9 . _ - starting with a letter or digit"
    );
    if name.is_empty() {
        return Err(format!("{kind} name is empty: {rule}"));
    }
    if name.len() > MAX_OBJECT_NAME_BYTES {
        return Err(format!("{kind} name is {} bytes long: {rule}", name.len()));
    }
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !first_ok || !rest_ok {
        return Err(format!(
            "{kind} name '{}' is not valid: {rule}",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// Validate a target's iSCSI name and return its normalised form (ASCII lowercase, as the
/// stringprep profile of RFC 3722 maps it). Only ASCII names are accepted.
pub fn normalize_iscsi_name(name: &str) -> Result<String, String> {
    normalize_iscsi_name_of("target", name)
}

/// [`normalize_iscsi_name`] for an initiator's name (the messages say "initiator name").
pub fn normalize_initiator_name(name: &str) -> Result<String, String> {
    normalize_iscsi_name_of("initiator", name)
}

/// [`normalize_iscsi_name`], naming the `role` ("target", "initiator") in messages.
fn normalize_iscsi_name_of(role: &str, name: &str) -> Result<String, String> {
    let shown = name.escape_debug().to_string();
    if name.is_empty() {
        return Err(format!("{role} name is empty"));
    }
    if name.len() > MAX_ISCSI_NAME_BYTES {
        return Err(format!(
            "{role} name is {} bytes long; iSCSI names are at most {MAX_ISCSI_NAME_BYTES} bytes",
            name.len()
        ));
    }
    if !name.is_ascii() {
        return Err(format!(
            "{role} name '{shown}' is not valid: only ASCII iSCSI names are supported"
        ));
    }
    let lower = name.to_ascii_lowercase();
    let why = if let Some(rest) = lower.strip_prefix("iqn.") {
        check_iqn_body(rest)
    } else if let Some(hex) = lower.strip_prefix("eui.") {
        check_hex_body("eui", hex, &[16])
    } else if let Some(hex) = lower.strip_prefix("naa.") {
        check_hex_body("naa", hex, &[16, 32])
    } else {
        Err("it must start with iqn., eui. or naa.".to_string())
    };
    match why {
        Ok(()) => Ok(lower),
        Err(why) => Err(format!("{role} name '{shown}' is not valid: {why}")),
    }
}

/// `yyyy-mm.reversed.domain[:unique]`, already lowercase.
fn check_iqn_body(rest: &str) -> Result<(), String> {
    const FORMAT: &str =
        "expected iqn.yyyy-mm.reversed.domain[:identifier], e.g. iqn.2026-11.dev.lunar:disk1";
    let (date, after_date) = rest
        .split_once('.')
        .ok_or_else(|| format!("no naming authority; {FORMAT}"))?;
    let date_bytes = date.as_bytes();
    let date_ok = date_bytes.len() == 7
        && date_bytes[4] == b'-'
        && date_bytes[..4].iter().all(u8::is_ascii_digit)
        && date_bytes[5..].iter().all(u8::is_ascii_digit)
        && matches!(
            &date[5..],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        );
    if !date_ok {
        return Err(format!("'{date}' is not a yyyy-mm date; {FORMAT}"));
    }
    let (authority, unique) = match after_date.split_once(':') {
        Some((authority, unique)) => (authority, Some(unique)),
        None => (after_date, None),
    };
    if authority.is_empty()
        || authority
            .split('.')
            .any(|label| label.is_empty() || !label.chars().all(is_label_char))
    {
        return Err(format!(
            "naming authority '{authority}' is not a reversed domain name; {FORMAT}"
        ));
    }
    if let Some(unique) = unique {
        if unique.is_empty() {
            return Err(format!("empty identifier after ':'; {FORMAT}"));
        }
        if let Some(bad) = unique.chars().find(|&c| !is_iscsi_name_char(c)) {
            return Err(format!(
                "character '{}' is not allowed; use a-z 0-9 - . :",
                bad.escape_debug()
            ));
        }
    }
    Ok(())
}

fn check_hex_body(kind: &str, hex: &str, lens: &[usize]) -> Result<(), String> {
    let len_ok = lens.contains(&hex.len());
    if !len_ok || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        let digits = lens
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" or ");
        return Err(format!("{kind}. must be followed by {digits} hex digits"));
    }
    Ok(())
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

fn is_iscsi_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | ':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn object_names() {
        for good in ["a", "disk1", "Vol_2.backup-x", &"x".repeat(64)] {
            assert_eq!(check_object_name("volume", good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "_a",
            "a/b",
            "a b",
            "é",
            &"x".repeat(65),
            "a:b",
        ] {
            let error = check_object_name("volume", bad).expect_err(bad);
            assert!(error.starts_with("volume name"), "{error}");
        }
    }

    #[test]
    fn iqn_names_are_checked_and_lowercased() {
        assert_eq!(
            normalize_iscsi_name("iqn.2026-11.dev.lunar:demo").as_deref(),
            Ok("iqn.2026-11.dev.lunar:demo")
        );
        assert_eq!(
            normalize_iscsi_name("IQN.2001-04.com.Example:Storage.Disk2.sys1.xyz").as_deref(),
            Ok("iqn.2001-04.com.example:storage.disk2.sys1.xyz")
        );
        assert_eq!(
            normalize_iscsi_name("iqn.1991-05.com.microsoft").as_deref(),
            Ok("iqn.1991-05.com.microsoft")
        );
        for bad in [
            "iqn.2026-13.dev.lunar:x",
            "iqn.26-11.dev.lunar",
            "iqn.2026-11",
            "iqn.2026-11.",
            "iqn.2026-11.dev..lunar",
            "iqn.2026-11.dev.lunar:",
            "iqn.2026-11.dev.lunar:a b",
            "iqn.2026-11.dev_x.lunar",
            "iqn.2026-11.dev.lunar:ü",
            "target1",
            "",
        ] {
            let error = normalize_iscsi_name(bad).expect_err(bad);
            assert!(error.contains("target name"), "{error}");
        }
    }

    #[test]
    fn eui_and_naa_names() {
        assert_eq!(
            normalize_iscsi_name("eui.02004567A425678D").as_deref(),
            Ok("eui.02004567a425678d")
        );
        assert!(normalize_iscsi_name("naa.52004567BA64678D").is_ok());
        assert!(normalize_iscsi_name("naa.62004567BA64678D0123456789ABCDEF").is_ok());
        assert!(normalize_iscsi_name("eui.02004567A425678").is_err());
        assert!(normalize_iscsi_name("eui.02004567A425678G").is_err());
        assert!(normalize_iscsi_name("naa.0123456789abcdef01").is_err());
    }

    #[test]
    fn initiator_names_say_initiator() {
        assert_eq!(
            normalize_initiator_name("iqn.1994-05.com.RedHat:Client1").as_deref(),
            Ok("iqn.1994-05.com.redhat:client1")
        );
        let error = normalize_initiator_name("client1").expect_err("bad");
        assert!(error.starts_with("initiator name 'client1'"), "{error}");
        let error = normalize_initiator_name("").expect_err("empty");
        assert_eq!(error, "initiator name is empty");
    }

    #[test]
    fn overlong_iscsi_name_is_refused() {
        let long = format!("iqn.2026-11.dev.lunar:{}", "a".repeat(210));
        let error = normalize_iscsi_name(&long).expect_err("too long");
        assert!(error.contains("at most 223 bytes"), "{error}");
    }

    proptest! {
        #[test]
        fn name_checks_never_panic(name in any::<String>()) {
            let _ = check_object_name("device", &name);
            if let Ok(normal) = normalize_iscsi_name(&name) {
                prop_assert_eq!(normalize_iscsi_name(&normal), Ok(normal.clone()));
            }
        }
    }
}
