//! Who may send requests inside a dialog, and which of them must prove
//! again who they are.
//!
//! A dialog's identifiers (Call-ID, tags, CSeq) travel in clear over UDP,
//! so knowing them proves nothing: a BYE or a re-INVITE that redirects the
//! media may come from anyone who saw one packet of the call. The rule:
//!
//! - An in-dialog request (and an ACK or CANCEL for the dialog's INVITE) is
//!   taken only from the dialog's **established peer** (the address its
//!   dialog-forming messages came from, or the connection they came on) or
//!   from a source the trunk's **IP allow-list** admits. Anything else is
//!   refused with `403` (an ACK, which takes no response, is dropped)
//!   before the dialog looks at it, so the refusal changes nothing.
//! - The port is not compared. NATs re-bind ports and SBCs send from pools
//!   of them, so comparing it would break real calls; and whoever can send
//!   from the peer's IP can pick any port anyway, which is also all the
//!   allow-list trusts.
//! - A dialog formed over TCP or TLS takes its requests only over TCP or
//!   TLS: any connection from the peer's address (a peer may reconnect).
//!   A datagram claiming that address would be the one thing a blind
//!   attacker can forge, so it is refused. Allow-listed sources still count
//!   on either transport: the operator vouched for the address.
//! - On a digest trunk a re-INVITE or UPDATE whose offer **moves the
//!   media** (a usable RTP address other than the current one) is
//!   challenged again even from the established peer ([`needs_reauth`]);
//!   a hold to `0.0.0.0`, a refresh or a hold at the same address is not.

use std::net::{IpAddr, SocketAddr};

use crate::auth::IpAllowList;
use crate::message::Method;

/// How many addresses one dialog peer may have (the address we sent to and
/// the one its answer came from, in practice; the bound keeps it small).
pub const MAX_PEER_ADDRESSES: usize = 4;

/// The established peer of one dialog: where its dialog-forming messages
/// came from. `C` names a connection (the transport layer's id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogPeer<C> {
    /// IPs the peer is known at (canonical: IPv4-mapped IPv6 as IPv4), at
    /// most [`MAX_PEER_ADDRESSES`].
    ips: Vec<IpAddr>,
    /// The TCP/TLS connection the dialog formed on; `None` over UDP.
    conn: Option<C>,
}

impl<C: Copy + Eq> DialogPeer<C> {
    /// A peer at `ip`, on connection `conn` (`None` for UDP).
    pub fn new(ip: IpAddr, conn: Option<C>) -> DialogPeer<C> {
        DialogPeer {
            ips: vec![ip.to_canonical()],
            conn,
        }
    }

    /// The peer is also at `ip` (the agent answered from another address
    /// than the one we called). Ignored past [`MAX_PEER_ADDRESSES`].
    pub fn add(&mut self, ip: IpAddr) {
        let ip = ip.to_canonical();
        if !self.ips.contains(&ip) && self.ips.len() < MAX_PEER_ADDRESSES {
            self.ips.push(ip);
        }
    }

    /// The dialog now runs on connection `conn` (its dialog-forming
    /// response came on it).
    pub fn set_conn(&mut self, conn: C) {
        self.conn = Some(conn);
    }

    /// The peer's addresses.
    pub fn ips(&self) -> &[IpAddr] {
        &self.ips
    }

    /// Whether the dialog formed over a connection (TCP/TLS).
    pub fn reliable(&self) -> bool {
        self.conn.is_some()
    }

    /// Whether a request from `source` on `conn` is the peer's own.
    pub fn is_peer(&self, source: IpAddr, conn: Option<C>) -> bool {
        if self.reliable() && conn.is_none() {
            return false;
        }
        (conn.is_some() && conn == self.conn) || self.ips.contains(&source.to_canonical())
    }
}

/// What to do with a request for a known dialog, before the dialog sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceVerdict {
    /// From the peer or an allowed source: go on.
    Accept,
    /// From anyone else: answer `403 Forbidden` once, statelessly, and
    /// change nothing.
    Forbid,
    /// An ACK from anyone else: drop it (an ACK takes no response).
    Drop,
}

/// The rule of the module docs for one request: `method` from `source` on
/// connection `conn` (`None` for a datagram), for a dialog whose
/// established peer is `peer`, on a trunk admitting `allowed` (an empty list
/// for the agent's leg, which no allow-list covers).
pub fn check_source<C: Copy + Eq>(
    method: &Method,
    source: IpAddr,
    conn: Option<C>,
    peer: &DialogPeer<C>,
    allowed: &IpAllowList,
) -> SourceVerdict {
    if peer.is_peer(source, conn) || allowed.contains(source) {
        SourceVerdict::Accept
    } else if *method == Method::Ack {
        SourceVerdict::Drop
    } else {
        SourceVerdict::Forbid
    }
}

/// Whether an offer moves the media: `offered` is the offer's RTP address
/// (`None` when it has no usable one: `0.0.0.0`, port 0, no SDP, an offer
/// that will be refused), `current` the peer's address now. An address
/// where nothing can be sent redirects nothing.
pub fn moves_media(offered: Option<SocketAddr>, current: Option<SocketAddr>) -> bool {
    let canonical = |a: SocketAddr| (a.ip().to_canonical(), a.port());
    match offered {
        None => false,
        Some(o) => current.map(canonical) != Some(canonical(o)),
    }
}

/// Whether a request from the established peer must carry valid
/// credentials again: a re-INVITE or UPDATE that [`moves_media`], on a
/// trunk with digest authentication.
pub fn needs_reauth(
    method: &Method,
    digest_trunk: bool,
    offered: Option<SocketAddr>,
    current: Option<SocketAddr>,
) -> bool {
    digest_trunk
        && matches!(method, Method::Invite | Method::Update)
        && moves_media(offered, current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("test address")
    }

    fn allow(entries: &[&str]) -> IpAllowList {
        IpAllowList::parse(entries.iter().copied()).expect("valid list")
    }

    #[test]
    fn who_may_send_in_a_dialog() {
        use SourceVerdict::*;
        let udp: DialogPeer<u64> = DialogPeer::new(ip("198.51.100.20"), None);
        let tcp: DialogPeer<u64> = DialogPeer::new(ip("198.51.100.20"), Some(7));
        let five9 = allow(&["198.51.100.0/28"]);
        let none = IpAllowList::default();
        // (method, source, conn, peer, allowed, verdict)
        type Case<'a> = (
            Method,
            &'a str,
            Option<u64>,
            &'a DialogPeer<u64>,
            &'a IpAllowList,
            SourceVerdict,
        );
        let cases: Vec<Case> = vec![
            // The peer itself, from any port, whatever the list says.
            (Method::Bye, "198.51.100.20", None, &udp, &none, Accept),
            (Method::Invite, "198.51.100.20", None, &udp, &five9, Accept),
            (
                Method::Ack,
                "::ffff:198.51.100.20",
                None,
                &udp,
                &none,
                Accept,
            ),
            // Another address of the trunk's allow-list.
            (Method::Bye, "198.51.100.9", None, &udp, &five9, Accept),
            (
                Method::Update,
                "198.51.100.9",
                Some(3),
                &tcp,
                &five9,
                Accept,
            ),
            // Anyone else: 403, or nothing for an ACK.
            (Method::Bye, "203.0.113.66", None, &udp, &five9, Forbid),
            (Method::Invite, "203.0.113.66", None, &udp, &none, Forbid),
            (Method::Cancel, "203.0.113.66", None, &udp, &five9, Forbid),
            (Method::Info, "198.51.100.21", None, &udp, &none, Forbid),
            (Method::Ack, "203.0.113.66", None, &udp, &five9, Drop),
            // A TCP dialog: the same or a new connection from the peer...
            (Method::Bye, "198.51.100.20", Some(7), &tcp, &none, Accept),
            (Method::Bye, "198.51.100.20", Some(8), &tcp, &none, Accept),
            // ...but not a datagram claiming its address, nor another host.
            (Method::Bye, "198.51.100.20", None, &tcp, &none, Forbid),
            (Method::Ack, "198.51.100.20", None, &tcp, &none, Drop),
            (Method::Bye, "203.0.113.66", Some(9), &tcp, &none, Forbid),
        ];
        for (i, (method, source, conn, peer, allowed, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                check_source(&method, ip(source), conn, peer, allowed),
                want,
                "case {i}: {method:?} from {source} on {conn:?}"
            );
        }
    }

    #[test]
    fn the_agent_is_known_where_it_answered_from_too() {
        let mut agent: DialogPeer<u64> = DialogPeer::new(ip("10.1.1.5"), None);
        agent.add(ip("10.1.1.6"));
        agent.add(ip("10.1.1.6"));
        let none = IpAllowList::default();
        for source in ["10.1.1.5", "10.1.1.6"] {
            assert_eq!(
                check_source(&Method::Bye, ip(source), None, &agent, &none),
                SourceVerdict::Accept,
                "{source}"
            );
        }
        assert_eq!(agent.ips().len(), 2, "no duplicates");
        for n in 0..10 {
            agent.add(ip(&format!("10.2.0.{n}")));
        }
        assert_eq!(agent.ips().len(), MAX_PEER_ADDRESSES, "bounded");
        // The agent answered over TCP: from then on, only connections.
        agent.set_conn(4);
        assert!(agent.reliable());
        assert!(!agent.is_peer(ip("10.1.1.5"), None));
        assert!(agent.is_peer(ip("10.1.1.5"), Some(5)));
        assert!(
            agent.is_peer(ip("192.0.2.1"), Some(4)),
            "its own connection"
        );
    }

    #[test]
    fn which_offers_move_the_media() {
        let now = Some(addr("198.51.100.20:40000"));
        let cases = [
            // Refresh, or hold at the same address: no.
            (Some("198.51.100.20:40000"), now, false),
            (Some("[::ffff:198.51.100.20]:40000"), now, false),
            // Hold to 0.0.0.0 or no usable address: nothing to redirect.
            (None, now, false),
            // Another IP, another port: yes.
            (Some("203.0.113.66:40000"), now, true),
            (Some("198.51.100.20:40002"), now, true),
            // No address known yet: any usable one is a move.
            (Some("198.51.100.20:40000"), None, true),
        ];
        for (offered, current, want) in cases {
            let offered = offered.map(addr);
            assert_eq!(
                moves_media(offered, current),
                want,
                "{offered:?} vs {current:?}"
            );
        }
    }

    #[test]
    fn reauthentication_only_for_moving_offers_on_digest_trunks() {
        let now = Some(addr("198.51.100.20:40000"));
        let away = Some(addr("203.0.113.66:5004"));
        assert!(needs_reauth(&Method::Invite, true, away, now));
        assert!(needs_reauth(&Method::Update, true, away, now));
        assert!(
            !needs_reauth(&Method::Invite, false, away, now),
            "allow-list trunk"
        );
        assert!(
            !needs_reauth(&Method::Invite, true, now, now),
            "same address"
        );
        assert!(
            !needs_reauth(&Method::Info, true, away, now),
            "no offer in INFO"
        );
        assert!(!needs_reauth(&Method::Bye, true, away, now));
    }
}
