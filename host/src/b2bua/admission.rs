//! Which trunk a new INVITE belongs to, and whether it may call at all:
//! IP allow-lists and/or digest authentication, per trunk.
//!
//! Unknown sources get `403`; a failed digest attempt gets a fresh challenge
//! and the next failure from the same source and Call-ID a `403`. Across
//! Call-IDs the digest lockout (`[trunk.auth] lockout_*`) backs off, then
//! blocks a guessing source: `403` before anything is hashed. Nothing about
//! the reason leaves the gateway beyond the status (it is logged).
//!
//! Refusals are logged at INFO within a budget ([`REFUSAL_LINES_PER_SEC`]);
//! past it they are counted and the count is logged with the next line
//! written. A block that starts is logged at WARN, once per block, within
//! its own budget.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use trunkline_sip::auth::{
    Admission as DigestAdmission, Algorithm, Blocks, ChallengeKind, Credentials, DigestAuth,
    DigestConfig, IpAllowList, LockoutConfig, LogBudget, LogPermit, NonceKey, Refusal, Secret,
};
use trunkline_sip::message::SipMessage;

use super::stats::GatewayStats;
use crate::config::TrunkConfig;

/// INFO lines about refused INVITEs per second; a 20,000-INVITE flood then
/// writes a few dozen lines, not 20,000.
pub(crate) const REFUSAL_LINES_PER_SEC: u32 = 10;
/// WARN lines about lockout blocks per second (one per block started), so
/// a botnet getting blocked address by address cannot flood the log either.
const BLOCK_LINES_PER_SEC: u32 = 5;

/// The verdict on a new INVITE.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Admitted on trunk number `.0` (index into the config's trunks).
    Trunk(usize),
    /// Refused: send this response (401/407 challenge or 403).
    Refuse(Box<SipMessage>),
    /// Refused, and no response can be built from the request (it is
    /// answered by nothing; the transaction layer already vetted it, so
    /// this does not happen in practice).
    Drop,
}

struct TrunkGate {
    allow: IpAllowList,
    digest: Option<DigestAuth<Credentials>>,
}

/// The admission rules of every trunk, in config order.
pub(crate) struct Gatekeeper {
    gates: Vec<TrunkGate>,
    stats: Arc<GatewayStats>,
    /// INFO lines about refusals.
    refusal_log: LogBudget,
    /// WARN lines about blocks that start.
    block_log: LogBudget,
}

/// Why the trunks' admission settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("trunk `{trunk}`: {message}")]
pub(crate) struct AdmissionError {
    trunk: String,
    message: String,
}

impl Gatekeeper {
    pub(crate) fn new(
        trunks: &[TrunkConfig],
        stats: Arc<GatewayStats>,
    ) -> Result<Gatekeeper, AdmissionError> {
        let err = |t: &TrunkConfig, message: String| AdmissionError {
            trunk: t.name.clone(),
            message,
        };
        let mut gates = Vec::new();
        for t in trunks {
            let allow = IpAllowList::parse(t.allow.iter().map(String::as_str))
                .map_err(|e| err(t, format!("allow: {e}")))?;
            let digest = match &t.auth {
                None => None,
                Some(a) => {
                    let mut config = DigestConfig::new(a.realm.clone());
                    config.algorithms = a
                        .algorithms
                        .iter()
                        .map(|name| {
                            Algorithm::parse(name)
                                .ok_or_else(|| err(t, format!("unknown digest algorithm `{name}`")))
                        })
                        .collect::<Result<_, _>>()?;
                    config.kind = if a.proxy {
                        ChallengeKind::Proxy
                    } else {
                        ChallengeKind::Www
                    };
                    config.nonce_lifetime = Duration::from_secs(a.nonce_secs);
                    config.lockout = LockoutConfig {
                        failures: a.lockout_failures,
                        window: Duration::from_secs(a.lockout_window_secs),
                        block: Duration::from_secs(a.lockout_block_secs),
                        ..LockoutConfig::default()
                    };
                    let mut users = Credentials::new();
                    for (user, password) in &a.users {
                        users.insert(&a.realm, user, Secret::password(password.clone()));
                    }
                    Some(
                        DigestAuth::new(
                            config,
                            NonceKey::generate()
                                .map_err(|e| err(t, format!("cannot make a nonce key: {e}")))?,
                            users,
                        )
                        .map_err(|e| err(t, format!("auth: {e}")))?,
                    )
                }
            };
            gates.push(TrunkGate { allow, digest });
        }
        let second = Duration::from_secs(1);
        Ok(Gatekeeper {
            gates,
            stats,
            refusal_log: LogBudget::new(REFUSAL_LINES_PER_SEC, second),
            block_log: LogBudget::new(BLOCK_LINES_PER_SEC, second),
        })
    }

    /// Decides for one INVITE from `source`.
    pub(crate) fn admit(
        &mut self,
        invite: &SipMessage,
        source: IpAddr,
        now: SystemTime,
    ) -> Verdict {
        // A trunk whose allow-list holds the source wins; among digest-only
        // trunks, the one whose realm the credentials name, else the first.
        let by_ip = self
            .gates
            .iter()
            .position(|g| !g.allow.blocks().is_empty() && g.allow.contains(source));
        let chosen = by_ip.or_else(|| {
            let digest_only = |g: &TrunkGate| g.allow.blocks().is_empty() && g.digest.is_some();
            let realm = credentials_realm(invite);
            self.gates
                .iter()
                .position(|g| {
                    digest_only(g)
                        && realm.as_deref().is_some_and(|r| {
                            g.digest.as_ref().is_some_and(|d| d.config().realm == r)
                        })
                })
                .or_else(|| self.gates.iter().position(digest_only))
        });
        let Some(index) = chosen else {
            if self.log_refusal() {
                tracing::info!(%source, "INVITE from a source no trunk admits; 403");
            }
            return forbidden(invite);
        };
        let Some(digest) = self.gates[index].digest.as_mut() else {
            return Verdict::Trunk(index);
        };
        let block = digest.config().lockout.block;
        match digest.admit(invite, source, now) {
            DigestAdmission::Admitted(user) => {
                tracing::debug!(%source, user, "digest authentication passed");
                Verdict::Trunk(index)
            }
            DigestAdmission::Rejected(rejection) => {
                self.blocks_started(source, rejection.blocks, block);
                if self.log_refusal() {
                    tracing::info!(%source, status = rejection.status,
                        verification = ?rejection.verification, "digest authentication: refused");
                }
                let to_tag = trunkline_sip::message::new_tag();
                match rejection.response(invite, Some(&to_tag)) {
                    Ok(r) => Verdict::Refuse(Box::new(r)),
                    Err(_) => forbidden(invite),
                }
            }
            DigestAdmission::Locked(locked) => {
                self.blocks_started(source, locked.blocks, block);
                self.stats.lockout_refusal(refusal_reason(locked.refusal));
                if self.log_refusal() {
                    tracing::info!(%source, refusal = ?locked.refusal,
                        "digest authentication: refused unchecked (lockout); 403");
                }
                forbidden(invite)
            }
        }
    }

    /// Whether a refusal may be logged now; writes the summary of the ones
    /// left out first.
    fn log_refusal(&mut self) -> bool {
        match self.refusal_log.permit(Instant::now()) {
            LogPermit::Log { suppressed } => {
                if suppressed > 0 {
                    tracing::info!(
                        suppressed,
                        "refused INVITEs not logged (over the log budget)"
                    );
                }
                true
            }
            LogPermit::Suppress => false,
        }
    }

    /// Counts the blocks a request started and says so at WARN.
    fn blocks_started(&mut self, source: IpAddr, blocks: Blocks, block: Duration) {
        if !blocks.any() {
            return;
        }
        if blocks.source {
            self.stats.lockout("source");
        }
        if blocks.user {
            self.stats.lockout("user");
        }
        if let LogPermit::Log { suppressed } = self.block_log.permit(Instant::now()) {
            tracing::warn!(%source, source_blocked = blocks.source, user_blocked = blocks.user,
                block_secs = block.as_secs(), blocks_not_logged = suppressed,
                "digest authentication: too many failures; blocked");
        }
    }
}

/// The `reason` label of a lockout refusal on `/metrics`.
fn refusal_reason(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::Blocked(_) => "blocked",
        Refusal::Backoff(_) => "backoff",
    }
}

/// The realm named in the request's credentials, if any.
fn credentials_realm(invite: &SipMessage) -> Option<String> {
    let value = invite
        .header("Authorization")
        .or_else(|| invite.header("Proxy-Authorization"))?;
    let start = value.to_ascii_lowercase().find("realm=")? + "realm=".len();
    let rest = value[start..].trim_start();
    let realm = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?,
        None => rest.split([',', ' ']).next()?,
    };
    Some(realm.to_owned())
}

fn forbidden(invite: &SipMessage) -> Verdict {
    let tag = trunkline_sip::message::new_tag();
    match invite.reply(403, None, Some(&tag)) {
        Ok(r) => Verdict::Refuse(Box::new(r)),
        Err(_) => Verdict::Drop,
    }
}

impl Gatekeeper {
    /// Whether `source` is on some trunk's IP allow-list: a peer whose Via
    /// may be believed when choosing where responses go.
    pub(crate) fn lists(&self, source: IpAddr) -> bool {
        self.gates
            .iter()
            .any(|g| !g.allow.blocks().is_empty() && g.allow.contains(source))
    }
}

/// The answer to credentials asked again inside a dialog (a re-INVITE or
/// UPDATE that moves the media on a digest trunk).
#[derive(Debug)]
pub(crate) enum Reauth {
    /// Valid credentials for the trunk (or nothing to check): go on.
    Admitted,
    /// Refused: send this instead, a fresh 401/407 challenge in the
    /// trunk's realm or 403 after repeated failures (`None`: no response
    /// can be built from the request; it is dropped).
    Refuse(Option<Box<SipMessage>>),
}

impl Gatekeeper {
    /// Trunk `trunk`'s allow-list; `None` for an index out of range.
    pub(crate) fn allow_list(&self, trunk: usize) -> Option<&IpAllowList> {
        self.gates.get(trunk).map(|g| &g.allow)
    }

    /// Whether trunk `trunk` authenticates with digest.
    pub(crate) fn has_digest(&self, trunk: usize) -> bool {
        self.gates.get(trunk).is_some_and(|g| g.digest.is_some())
    }

    /// Checks the credentials of in-dialog `request` from `source` for
    /// trunk `trunk`, the way a new INVITE's are (failures count alike).
    pub(crate) fn reauthenticate(
        &mut self,
        trunk: usize,
        request: &SipMessage,
        source: IpAddr,
        now: SystemTime,
    ) -> Reauth {
        let Some(digest) = self.gates.get_mut(trunk).and_then(|g| g.digest.as_mut()) else {
            return Reauth::Admitted;
        };
        let block = digest.config().lockout.block;
        match digest.admit(request, source, now) {
            DigestAdmission::Admitted(user) => {
                tracing::debug!(%source, user, "in-dialog digest authentication passed");
                Reauth::Admitted
            }
            DigestAdmission::Locked(locked) => {
                self.blocks_started(source, locked.blocks, block);
                self.stats.lockout_refusal(refusal_reason(locked.refusal));
                tracing::debug!(%source, refusal = ?locked.refusal,
                    "in-dialog request refused unchecked (lockout)");
                let response = locked.response(request, None);
                Reauth::Refuse(response.ok().map(Box::new))
            }
            DigestAdmission::Rejected(rejection) => {
                self.blocks_started(source, rejection.blocks, block);
                tracing::debug!(%source, status = rejection.status,
                    verification = ?rejection.verification, "in-dialog request challenged");
                // In a dialog the request's To already carries our tag.
                let response = rejection
                    .response(request, None)
                    .or_else(|_| request.reply(403, None, None));
                Reauth::Refuse(response.ok().map(Box::new))
            }
        }
    }
}
