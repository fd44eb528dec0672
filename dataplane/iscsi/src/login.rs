//! The login phase (RFC 7143 §6.3, §11.12, §11.13): stage transitions (CSG/NSG and the T bit),
//! multi-PDU text (C bit), version and ISID/TSIH checks, identity keys (InitiatorName,
//! TargetName, SessionType) and the access check against the catalog, the security stage
//! (through [`Security`]: CHAP when the target has credentials) and operational negotiation
//! (through [`negotiate`]), TSIH assignment and the switch to the full feature phase. Any
//! failure answers a Login Response with the status the RFC prescribes and closes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, Ordering};

use lunar_wire::iscsi::codes::{login_stage, login_status, PROTOCOL_VERSION};
use lunar_wire::iscsi::framer::LOGIN_MAX_DATA_SEGMENT_LEN_BYTES;
use lunar_wire::iscsi::initiator::{login_flags, LoginRequestHeader};
use lunar_wire::iscsi::target::LoginResponseHeader;
use lunar_wire::iscsi::text::{self, KeyValue, NOT_UNDERSTOOD, REJECT};
use lunar_wire::iscsi::{Frame, Opcode, Pdu};

use crate::catalog::ChapConfig;
use crate::connection::{
    Action, CloseReason, Connection, Phase, SessionIdentity, SessionInfo, SessionKind,
    TargetCatalog,
};
use crate::negotiate::{negotiate, Context, Reply};
use crate::params::declared_max_recv_data_segment_len;
use crate::security::{Leave, LoginFailure, Security};

/// Most login text (key=value bytes, across C-bit continuations) accepted in one exchange;
/// the RFC asks for at least 8192.
pub(crate) const MAX_LOGIN_TEXT_BYTES: usize = 64 * 1024;

/// TSIHs are unique per target; sessions of all connections of the process share this counter.
static NEXT_TSIH: AtomicU16 = AtomicU16::new(1);

fn allocate_tsih() -> u16 {
    loop {
        let tsih = NEXT_TSIH.fetch_add(1, Ordering::Relaxed);
        if tsih != 0 {
            return tsih;
        }
    }
}

/// Everything the login phase accumulates.
#[derive(Debug, Default)]
pub(crate) struct LoginState {
    started: bool,
    /// Current stage: security (0) or operational (1) negotiation.
    stage: u8,
    isid: [u8; 6],
    itt: u32,
    cid: u16,
    /// Text of a request continued over several PDUs (C bit).
    text: Vec<u8>,
    /// Keys already negotiated in this login: proposing one again is an initiator error.
    keys_seen: HashSet<String>,
    initiator_name: Option<String>,
    target_name: Option<String>,
    session_kind: Option<SessionKind>,
    identity_checked: bool,
    /// Credentials the initiator must prove, from the catalog once the identity is known.
    chap: Option<ChapConfig>,
    security: Security,
    declared_max_recv: bool,
    portal_group_tag_sent: bool,
}

/// Keys that say who logs in to what; answered before any other key of the same request.
const IDENTITY_KEYS: [&str; 3] = ["InitiatorName", "TargetName", "SessionType"];

/// Normalises an iSCSI name for comparison (names are case-insensitive).
pub(crate) fn normalise_name(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl Connection {
    pub(crate) fn on_login_phase_pdu(
        &mut self,
        frame: &Frame<'_>,
        catalog: &dyn TargetCatalog,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        let bhs = frame.bhs();
        if bhs.opcode() != Some(Opcode::LoginRequest) {
            let reason = format!("opcode {:#04x} during login", bhs.opcode_bits());
            self.fail_login_with(login_status::INVALID_DURING_LOGIN, reason, actions);
            return;
        }
        if let Err(failure) = self.login_step(frame, catalog, now_ms, actions) {
            self.fail_login_with(failure.status, failure.reason, actions);
        }
    }

    /// Answers a failed login and closes.
    pub(crate) fn fail_login_with(
        &mut self,
        status: u16,
        reason: String,
        actions: &mut Vec<Action>,
    ) {
        tracing::debug!(status = format_args!("{status:#06x}"), %reason, "login failed");
        let flags = login_flags::pack(false, false, self.login.stage, 0);
        let header = LoginResponseHeader::new(
            flags,
            self.login.isid,
            0,
            self.login.itt,
            status,
            self.seq.peek(),
        );
        self.send.push(&header, &[]);
        self.close(CloseReason::LoginFailed(reason), actions);
    }

    fn login_step(
        &mut self,
        frame: &Frame<'_>,
        catalog: &dyn TargetCatalog,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) -> Result<(), LoginFailure> {
        let req = LoginRequestHeader::view(frame.bhs_bytes);
        let transit = req.flags & login_flags::TRANSIT != 0;
        let cont = req.flags & login_flags::CONTINUE != 0;
        let csg = login_flags::csg(req.flags);
        let nsg = login_flags::nsg(req.flags);
        self.login.itt = req.initiator_task_tag.get();
        if !self.login.started {
            self.login.started = true;
            self.login.isid = req.isid;
            self.login.cid = req.cid.get();
            self.login.stage = csg.min(login_stage::OPERATIONAL_NEGOTIATION);
            self.seq.start(req.cmd_sn.get(), req.exp_stat_sn.get());
            if req.tsih.get() != 0 {
                return Err(LoginFailure::new(
                    login_status::SESSION_DOES_NOT_EXIST,
                    "adding a connection to an existing session is not supported",
                ));
            }
        } else if req.isid != self.login.isid || req.tsih.get() != 0 {
            return Err(LoginFailure::new(
                login_status::INITIATOR_ERROR,
                "ISID or TSIH changed during login",
            ));
        }
        if req.version_min > PROTOCOL_VERSION {
            return Err(LoginFailure::new(
                login_status::UNSUPPORTED_VERSION,
                format!("version-min {}", req.version_min),
            ));
        }
        if csg != self.login.stage {
            return Err(LoginFailure::new(
                login_status::INITIATOR_ERROR,
                format!("CSG {csg} while in stage {}", self.login.stage),
            ));
        }
        if transit && cont {
            return Err(LoginFailure::new(
                login_status::INITIATOR_ERROR,
                "T and C both set",
            ));
        }
        let valid_next =
            nsg == login_stage::OPERATIONAL_NEGOTIATION || nsg == login_stage::FULL_FEATURE_PHASE;
        if transit && (nsg <= csg || !valid_next) {
            return Err(LoginFailure::new(
                login_status::INITIATOR_ERROR,
                format!("cannot transit from stage {csg} to {nsg}"),
            ));
        }
        if self.login.text.len() + frame.data.len() > MAX_LOGIN_TEXT_BYTES {
            return Err(LoginFailure::new(
                login_status::INITIATOR_ERROR,
                "login text too long",
            ));
        }
        self.login.text.extend_from_slice(frame.data);
        if cont {
            // Ask for the rest of the text.
            self.send_login_response(login_flags::pack(false, false, csg, 0), 0, &[]);
            return Ok(());
        }

        let request_text = std::mem::take(&mut self.login.text);
        let mut response = Vec::new();
        self.negotiate_login_keys(&request_text, csg, catalog, &mut response)?;
        let chap_required = self.login.chap.is_some();
        if csg == login_stage::OPERATIONAL_NEGOTIATION
            && !self.login.security.satisfied(chap_required)
        {
            return Err(LoginFailure::new(
                login_status::AUTHENTICATION_FAILURE,
                "authentication is required but the initiator skipped the security stage",
            ));
        }
        let kind = self.login.session_kind.unwrap_or(SessionKind::Normal);
        if kind == SessionKind::Normal && !self.login.portal_group_tag_sent {
            let tag = self.config.portal_group_tag.to_string();
            text::push_pair(&mut response, "TargetPortalGroupTag", &tag);
            self.login.portal_group_tag_sent = true;
        }
        let mut transit = transit;
        if csg == login_stage::SECURITY_NEGOTIATION && transit {
            match self.login.security.leave(chap_required) {
                Leave::Allowed => {}
                // Authentication under way: stay in the security stage (T=0).
                Leave::NotYet => transit = false,
                Leave::Refused(failure) => return Err(failure),
            }
        }
        let entering_ffp = transit && nsg == login_stage::FULL_FEATURE_PHASE;
        if (csg == login_stage::OPERATIONAL_NEGOTIATION || entering_ffp)
            && !self.login.declared_max_recv
        {
            let ours = declared_max_recv_data_segment_len(&self.config);
            text::push_pair(&mut response, "MaxRecvDataSegmentLength", &ours.to_string());
            self.params.max_recv_data_segment_len_bytes = ours;
            self.login.declared_max_recv = true;
        }
        if response.len() > LOGIN_MAX_DATA_SEGMENT_LEN_BYTES as usize {
            return Err(LoginFailure::new(
                login_status::INITIATOR_ERROR,
                "login response would exceed 8192 bytes",
            ));
        }
        if entering_ffp {
            let tsih = allocate_tsih();
            self.params.finish(&self.config);
            self.send_login_response(login_flags::pack(true, false, csg, nsg), tsih, &response);
            self.enter_full_feature(kind, tsih, now_ms, actions);
        } else if transit {
            self.login.stage = nsg;
            self.send_login_response(login_flags::pack(true, false, csg, nsg), 0, &response);
        } else {
            self.send_login_response(login_flags::pack(false, false, csg, 0), 0, &response);
        }
        Ok(())
    }

    fn send_login_response(&mut self, flags: u8, tsih: u16, text: &[u8]) {
        let header = LoginResponseHeader::new(
            flags,
            self.login.isid,
            tsih,
            self.login.itt,
            login_status::SUCCESS,
            self.seq.take(),
        );
        self.send.push(&header, &[text]);
    }

    /// Answers every key of one complete login text into `response`.
    fn negotiate_login_keys(
        &mut self,
        request_text: &[u8],
        csg: u8,
        catalog: &dyn TargetCatalog,
        response: &mut Vec<u8>,
    ) -> Result<(), LoginFailure> {
        let pairs = text::parse(request_text)
            .map_err(|err| LoginFailure::new(login_status::INITIATOR_ERROR, err.to_string()))?;
        let kind_in_request = pairs
            .iter()
            .find(|kv| kv.key == "SessionType")
            .map(|kv| kv.value);
        let discovery = match (self.login.session_kind, kind_in_request) {
            (Some(kind), _) => kind == SessionKind::Discovery,
            (None, Some(value)) => value == "Discovery",
            (None, None) => false,
        };
        let proposed_max_burst_len_bytes = pairs
            .iter()
            .find(|kv| kv.key == "MaxBurstLength")
            .and_then(|kv| text::parse_number(kv.value).ok())
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX));
        let config = self.config.clone();
        let ctx = Context {
            config: &config,
            discovery,
            proposed_max_burst_len_bytes,
        };
        // Who logs in to what first: the answers to the other keys (AuthMethod above all)
        // depend on it.
        let (identity, others): (Vec<&KeyValue<'_>>, Vec<&KeyValue<'_>>) =
            pairs.iter().partition(|kv| IDENTITY_KEYS.contains(&kv.key));
        for kv in identity.into_iter().chain(others) {
            if !self.login.keys_seen.insert(kv.key.to_string()) {
                return Err(LoginFailure::new(
                    login_status::INITIATOR_ERROR,
                    format!("key {} negotiated twice", kv.key),
                ));
            }
            if !IDENTITY_KEYS.contains(&kv.key) {
                self.check_identity(catalog)?;
            }
            self.answer_login_key(kv, csg, &ctx, response)?;
        }
        self.check_identity(catalog)?;
        let Connection { login, entropy, .. } = self;
        login.security.finish_request(
            login.chap.as_ref(),
            &mut || entropy.challenge_bytes(),
            response,
        )
    }

    fn answer_login_key(
        &mut self,
        kv: &KeyValue<'_>,
        csg: u8,
        ctx: &Context<'_>,
        response: &mut Vec<u8>,
    ) -> Result<(), LoginFailure> {
        let KeyValue { key, value } = *kv;
        match key {
            "InitiatorName" => {
                if value.is_empty() {
                    return Err(LoginFailure::new(
                        login_status::MISSING_PARAMETER,
                        "empty InitiatorName",
                    ));
                }
                self.login.initiator_name = Some(normalise_name(value));
            }
            // Declarative, nothing to answer.
            "InitiatorAlias" => {}
            "TargetName" => self.login.target_name = Some(normalise_name(value)),
            "SessionType" => {
                self.login.session_kind = Some(match value {
                    "Normal" => SessionKind::Normal,
                    "Discovery" => SessionKind::Discovery,
                    _ => {
                        return Err(LoginFailure::new(
                            login_status::SESSION_TYPE_NOT_SUPPORTED,
                            format!("SessionType={value}"),
                        ))
                    }
                });
            }
            // Keys only a target sends, or only the full feature phase knows.
            "TargetAlias" | "TargetAddress" | "TargetPortalGroupTag" | "SendTargets" => {
                text::push_pair(response, key, REJECT);
            }
            _ if Security::is_security_key(key) => {
                let in_security = csg == login_stage::SECURITY_NEGOTIATION;
                let chap_required = self.login.chap.is_some();
                if let Some(answer) =
                    self.login
                        .security
                        .on_key(key, value, in_security, chap_required)?
                {
                    text::push_pair(response, key, answer);
                }
            }
            _ => match negotiate(key, value, &mut self.params, ctx) {
                Some(Reply::Value(answer)) => text::push_pair(response, key, &answer),
                Some(Reply::Constant(answer)) => text::push_pair(response, key, answer),
                Some(Reply::Silent) => {}
                None => text::push_pair(response, key, NOT_UNDERSTOOD),
            },
        }
        Ok(())
    }

    /// Once, with the first complete login text: who is logging in, to what, whether that
    /// initiator may, and which credentials it must prove.
    fn check_identity(&mut self, catalog: &dyn TargetCatalog) -> Result<(), LoginFailure> {
        if self.login.identity_checked {
            return Ok(());
        }
        let Some(initiator) = self.login.initiator_name.as_deref() else {
            return Err(LoginFailure::new(
                login_status::MISSING_PARAMETER,
                "InitiatorName missing",
            ));
        };
        let target = match self.login.session_kind.unwrap_or(SessionKind::Normal) {
            SessionKind::Discovery => None,
            SessionKind::Normal => {
                let Some(target) = self.login.target_name.as_deref() else {
                    return Err(LoginFailure::new(
                        login_status::MISSING_PARAMETER,
                        "TargetName missing",
                    ));
                };
                if !catalog.target_exists(target) {
                    return Err(LoginFailure::new(
                        login_status::NOT_FOUND,
                        format!("no target {target}"),
                    ));
                }
                if !catalog.initiator_allowed(target, initiator) {
                    tracing::info!(%initiator, %target, "login refused: initiator not in the target's access list");
                    return Err(LoginFailure::new(
                        login_status::AUTHORIZATION_FAILURE,
                        format!("{initiator} may not log in to {target}"),
                    ));
                }
                Some(target)
            }
        };
        let chap = catalog.chap(target);
        if let Some(config) = &chap {
            if let Err(err) = config.validate() {
                tracing::error!(target = target.unwrap_or("discovery"), %err, "unusable CHAP configuration; refusing logins");
                return Err(LoginFailure::new(
                    login_status::TARGET_ERROR,
                    format!("CHAP configuration: {err}"),
                ));
            }
        }
        self.login.chap = chap;
        self.login.identity_checked = true;
        Ok(())
    }

    fn enter_full_feature(
        &mut self,
        kind: SessionKind,
        tsih: u16,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        let login = std::mem::take(&mut self.login);
        let initiator = login.initiator_name.unwrap_or_default();
        let target = match kind {
            SessionKind::Normal => login.target_name,
            SessionKind::Discovery => None,
        };
        let identity = SessionIdentity {
            kind,
            initiator: initiator.clone(),
            target: target.clone(),
            isid: login.isid,
            tsih,
        };
        self.session = Some(SessionInfo {
            identity,
            cid: login.cid,
        });
        self.phase = Phase::FullFeature;
        // Digests apply from the first PDU after the final login response.
        self.send
            .set_digests(self.params.header_digest, self.params.data_digest);
        self.keepalive.on_activity(now_ms);
        tracing::debug!(
            ?kind,
            %initiator,
            ?target,
            tsih,
            header_digest = ?self.params.header_digest,
            data_digest = ?self.params.data_digest,
            "login complete"
        );
        actions.push(Action::LoggedIn {
            kind,
            initiator,
            target,
            isid: login.isid,
            tsih,
        });
    }
}
