//! SendTargets (RFC 7143 §13.12, Appendix C): reports targets and their portal addresses from
//! the [`TargetCatalog`], leaving out those whose access list does not admit the initiator. A
//! discovery session gets every such target for `All`; a normal session gets its own target
//! for `All` or an empty value; a named target is reported if it exists (and is visible).
//! Values that are neither are answered `Reject`.

use lunar_wire::iscsi::text::{self, REJECT};

use crate::connection::{Connection, SessionKind, TargetCatalog};
use crate::login::normalise_name;

/// Whether `value` has the form of an iSCSI name (`iqn.`, `eui.` or `naa.` followed by more).
pub(crate) fn looks_like_iscsi_name(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    ["iqn.", "eui.", "naa."]
        .iter()
        .any(|prefix| lower.len() > prefix.len() && lower.starts_with(prefix))
}

impl Connection {
    /// Appends the answer to `SendTargets=value` to `response`.
    pub(crate) fn answer_send_targets(
        &self,
        value: &str,
        catalog: &dyn TargetCatalog,
        response: &mut Vec<u8>,
    ) {
        let session_target = self
            .session
            .as_ref()
            .and_then(|s| s.identity.target.clone());
        let initiator = self
            .session
            .as_ref()
            .map(|s| s.identity.initiator.as_str())
            .unwrap_or_default();
        let only = match (self.session_kind(), value) {
            (SessionKind::Discovery, "All") => None,
            (SessionKind::Normal, "All" | "") => session_target,
            (_, name) if looks_like_iscsi_name(name) => Some(normalise_name(name)),
            _ => {
                text::push_pair(response, "SendTargets", REJECT);
                return;
            }
        };
        if self.session_kind() == SessionKind::Normal && only.is_none() {
            // A normal session always has a target; nothing to report otherwise.
            return;
        }
        let visible = catalog
            .send_targets(only.as_deref())
            .into_iter()
            .filter(|(iqn, _)| catalog.initiator_allowed(&normalise_name(iqn), initiator));
        for (iqn, addresses) in visible {
            text::push_pair(response, "TargetName", &iqn);
            for address in &addresses {
                text::push_pair(response, "TargetAddress", address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_iscsi_names() {
        assert!(looks_like_iscsi_name("iqn.2024-01.org.lunar:disk"));
        assert!(looks_like_iscsi_name("EUI.0123456789ABCDEF"));
        assert!(looks_like_iscsi_name("naa.52004567BA64678D"));
        assert!(!looks_like_iscsi_name("Alle"));
        assert!(!looks_like_iscsi_name("A"));
        assert!(!looks_like_iscsi_name("iqn."));
        assert!(!looks_like_iscsi_name(""));
    }
}
