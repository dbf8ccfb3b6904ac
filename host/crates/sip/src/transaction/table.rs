//! [`Transactions`]: every live transaction of an endpoint, by key.
//!
//! The table routes messages to machines, collects what they want sent and
//! told, answers "when must I wake up next" for all of them at once, and
//! drops each machine as soon as it terminates (after its
//! [`Event::Terminated`] is queued, so the owner can drop per-key state of
//! its own, such as the destination address).
//!
//! What the table does not decide: requests that match nothing come back
//! as [`Routed::Unmatched`]. The owner then starts a server transaction
//! (never for an ACK: an unmatched ACK is the ACK for a 2xx and belongs to
//! the dialog), and for a CANCEL also looks up
//! [`TransactionKey::cancelled_invite`] to answer 200 + 487, or 481.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use super::budget::{Budget, Overload, ServerLimits};
use super::{
    AckBuilder, Client, ClientInvite, Event, Reliability, ResponseError, Server, ServerInvite,
    State, Timers, Transaction, TransactionKey,
};

/// A message a transaction wants on the wire. Where to send it is the
/// owner's knowledge: the target chosen for a client transaction, the Via
/// of the request for a server one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<M> {
    /// The transaction sending it.
    pub key: TransactionKey,
    /// The message, as the owner handed it in (or as its ACK builder made it).
    pub message: M,
}

/// Whether a received message belonged to a transaction.
#[must_use = "an unmatched message must go to the TU or start a transaction"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed<M> {
    /// A transaction took it (a retransmission absorbed or answered, an ACK,
    /// a response passed up as an event).
    Matched,
    /// No transaction matches; the message is handed back.
    Unmatched(M),
}

/// Why the table refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// A transaction with this key is already running (a request
    /// retransmission should have gone to `handle_request`).
    #[error("transaction {0} already exists")]
    Exists(TransactionKey),
    /// No transaction has this key (it never existed or already ended).
    #[error("no transaction {0}")]
    NotFound(TransactionKey),
    /// The key's role or method does not fit this kind of transaction (an
    /// ACK never has one; INVITE has its own machines).
    #[error("key {key} cannot name a {kind} transaction")]
    WrongKind {
        /// The offending key.
        key: TransactionKey,
        /// The kind of transaction asked for.
        kind: &'static str,
    },
    /// The server transaction refused the response.
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// A new server transaction would break a cap of [`ServerLimits`].
    #[error(transparent)]
    Overloaded(#[from] Overload),
}

/// Every live transaction, by key.
#[derive(Debug)]
pub struct Transactions<M> {
    /// Timer values for transactions started through `start_*`.
    timers: Timers,
    /// The live machines.
    machines: HashMap<TransactionKey, Transaction<M>>,
    /// Deadlines by time. Entries go stale when a machine's deadline moves
    /// or it ends; they are skipped when they reach the top, which keeps
    /// each update O(log n) instead of a scan of every machine.
    deadlines: BinaryHeap<Reverse<(Instant, TransactionKey)>>,
    /// Messages waiting for `poll_transmit`.
    transmits: VecDeque<Transmit<M>>,
    /// Events waiting for `poll_event`.
    events: VecDeque<(TransactionKey, Event<M>)>,
    /// Open server transactions per source, and the caps.
    budget: Budget,
    /// The source each open server transaction is counted against.
    origins: HashMap<TransactionKey, IpAddr>,
}

impl<M: Clone> Default for Transactions<M> {
    fn default() -> Self {
        Self::new(Timers::default())
    }
}

impl<M: Clone> Transactions<M> {
    /// An empty table whose `start_*` methods use `timers`.
    pub fn new(timers: Timers) -> Self {
        Self {
            timers,
            machines: HashMap::new(),
            deadlines: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            budget: Budget::new(ServerLimits::default()),
            origins: HashMap::new(),
        }
    }

    /// Sets the caps on open server transactions (see [`ServerLimits`]).
    pub fn limit_servers(&mut self, limits: ServerLimits) {
        self.budget.set_limits(limits);
    }

    /// Whether a new server transaction from `source` would fit.
    pub fn server_room(&self, source: IpAddr) -> Result<(), Overload> {
        self.budget.check(source)
    }

    /// Open server transactions from `source`, and in all.
    pub fn servers_open(&self, source: IpAddr) -> (usize, usize) {
        (self.budget.open_from(source), self.budget.open())
    }

    /// Sends `invite` under a new INVITE client transaction.
    pub fn start_client_invite(
        &mut self,
        now: Instant,
        key: TransactionKey,
        reliability: Reliability,
        invite: M,
        build_ack: AckBuilder<M>,
    ) -> Result<(), TableError> {
        let tx = ClientInvite::new(now, reliability, self.timers, invite, build_ack);
        self.insert(key, tx.into())
    }

    /// Sends `request` (not INVITE, not ACK) under a new client transaction.
    pub fn start_client(
        &mut self,
        now: Instant,
        key: TransactionKey,
        reliability: Reliability,
        request: M,
    ) -> Result<(), TableError> {
        let tx = Client::new(now, reliability, self.timers, request);
        self.insert(key, tx.into())
    }

    /// Opens the server transaction for a new INVITE from `source`;
    /// `trying` is the `100 Trying` it sends if the TU is slow. Refused with
    /// [`TableError::Overloaded`] past the caps.
    pub fn start_server_invite(
        &mut self,
        now: Instant,
        key: TransactionKey,
        reliability: Reliability,
        trying: M,
        source: IpAddr,
    ) -> Result<(), TableError> {
        self.budget.check(source)?;
        let tx = ServerInvite::new(now, reliability, self.timers, trying);
        self.insert_counted(key, tx.into(), source)
    }

    /// Opens the server transaction for a new non-INVITE request from
    /// `source`. Refused with [`TableError::Overloaded`] past the caps.
    pub fn start_server(
        &mut self,
        now: Instant,
        key: TransactionKey,
        reliability: Reliability,
        source: IpAddr,
    ) -> Result<(), TableError> {
        self.budget.check(source)?;
        let tx = Server::new(now, reliability, self.timers);
        self.insert_counted(key, tx.into(), source)
    }

    /// [`insert`](Self::insert), counted against `source`.
    fn insert_counted(
        &mut self,
        key: TransactionKey,
        tx: Transaction<M>,
        source: IpAddr,
    ) -> Result<(), TableError> {
        tx.fits(&key)?;
        if self.machines.contains_key(&key) {
            return Err(TableError::Exists(key));
        }
        self.budget.take(source)?;
        self.origins.insert(key.clone(), source);
        self.machines.insert(key.clone(), tx);
        self.settle(&key, None);
        Ok(())
    }

    /// Adds a machine built by the owner, e.g. with its own [`Timers`].
    pub fn insert(&mut self, key: TransactionKey, tx: Transaction<M>) -> Result<(), TableError> {
        tx.fits(&key)?;
        if self.machines.contains_key(&key) {
            return Err(TableError::Exists(key));
        }
        self.machines.insert(key.clone(), tx);
        self.settle(&key, None);
        Ok(())
    }

    /// A request arrived under `key` (a server key). Retransmissions are
    /// answered or absorbed, an ACK goes to its INVITE transaction;
    /// anything else comes back unmatched.
    pub fn handle_request(&mut self, now: Instant, key: &TransactionKey, request: M) -> Routed<M> {
        let mut target = key.matching_transaction();
        if !self.machines.contains_key(&target)
            && let Some(untagged) = key.untagged_invite()
        {
            target = untagged;
        }
        let Some(tx) = self.machines.get_mut(&target) else {
            return Routed::Unmatched(request);
        };
        let before = tx.poll_timeout();
        match tx {
            Transaction::ServerInvite(m) if key.is_ack() => m.handle_ack(now, request),
            Transaction::ServerInvite(m) => m.handle_request(now),
            Transaction::Server(m) => m.handle_request(now),
            Transaction::ClientInvite(_) | Transaction::Client(_) => {
                return Routed::Unmatched(request);
            }
        }
        self.settle(&target, before);
        Routed::Matched
    }

    /// A response arrived under `key` (a client key: top Via branch and
    /// CSeq method). Unmatched responses (a 2xx retransmitted after the
    /// transaction ended) come back for the dialog.
    pub fn handle_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        status: u16,
        response: M,
    ) -> Routed<M> {
        let Some(tx) = self.machines.get_mut(key) else {
            return Routed::Unmatched(response);
        };
        let before = tx.poll_timeout();
        match tx {
            Transaction::ClientInvite(m) => m.handle_response(now, status, response),
            Transaction::Client(m) => m.handle_response(now, status, response),
            Transaction::ServerInvite(_) | Transaction::Server(_) => {
                return Routed::Unmatched(response);
            }
        }
        self.settle(key, before);
        Routed::Matched
    }

    /// The TU responds on the server transaction `key`.
    pub fn send_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        status: u16,
        response: M,
    ) -> Result<(), TableError> {
        let tx = self
            .machines
            .get_mut(key)
            .ok_or_else(|| TableError::NotFound(key.clone()))?;
        let before = tx.poll_timeout();
        let sent = match tx {
            Transaction::ServerInvite(m) => m.send_response(now, status, response),
            Transaction::Server(m) => m.send_response(now, status, response),
            Transaction::ClientInvite(_) | Transaction::Client(_) => {
                return Err(TableError::WrongKind {
                    key: key.clone(),
                    kind: "server",
                });
            }
        };
        self.settle(key, before);
        Ok(sent?)
    }

    /// The transport could not deliver a message of transaction `key`.
    /// Returns whether such a transaction was live.
    pub fn handle_transport_error(&mut self, now: Instant, key: &TransactionKey) -> bool {
        let Some(tx) = self.machines.get_mut(key) else {
            return false;
        };
        let before = tx.poll_timeout();
        tx.handle_transport_error(now);
        self.settle(key, before);
        true
    }

    /// Drops transaction `key` without waiting for its timers: an INVITE
    /// whose CANCEL got no final response in 64*T1 (RFC 3261 §9.1). Its
    /// last event, [`Event::Terminated`], is queued as for any other end,
    /// so the owner's indexes let go of it. Returns whether it was live.
    pub fn abandon(&mut self, key: &TransactionKey) -> bool {
        if self.machines.remove(key).is_none() {
            return false;
        }
        if let Some(source) = self.origins.remove(key) {
            self.budget.give_back(source);
        }
        self.events.push_back((key.clone(), Event::Terminated));
        true
    }

    /// Fires every timer of every transaction due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.deadlines.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, key))) = self.deadlines.pop() else {
                break;
            };
            let Some(tx) = self.machines.get_mut(&key) else {
                continue;
            };
            let before = tx.poll_timeout();
            // A later deadline means this entry was stale; that deadline
            // has its own entry.
            if before.is_some_and(|d| d <= now) {
                tx.handle_timeout(now);
                self.settle(&key, before);
            }
        }
    }

    /// The earliest deadline across all transactions.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, key))) = self.deadlines.peek() {
            let current = self.machines.get(key).and_then(Transaction::poll_timeout);
            if current == Some(*at) {
                return current;
            }
            self.deadlines.pop();
        }
        None
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<M>> {
        self.transmits.pop_front()
    }

    /// The next event for the TU, with the transaction it concerns.
    pub fn poll_event(&mut self) -> Option<(TransactionKey, Event<M>)> {
        self.events.pop_front()
    }

    /// State of transaction `key`, if it is live. For a CANCEL, ask about
    /// [`TransactionKey::cancelled_invite`]: only Proceeding can be cancelled.
    pub fn state(&self, key: &TransactionKey) -> Option<State> {
        self.machines.get(key).map(Transaction::state)
    }

    /// Transaction `key`, if it is live.
    pub fn get(&self, key: &TransactionKey) -> Option<&Transaction<M>> {
        self.machines.get(key)
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.machines.len()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.machines.is_empty()
    }

    /// Moves a machine's output into the table's queues, reaps it if it
    /// terminated, and records its deadline if it changed from `before`.
    fn settle(&mut self, key: &TransactionKey, before: Option<Instant>) {
        let Some(tx) = self.machines.get_mut(key) else {
            return;
        };
        while let Some(message) = tx.poll_transmit() {
            let key = key.clone();
            self.transmits.push_back(Transmit { key, message });
        }
        while let Some(event) = tx.poll_event() {
            self.events.push_back((key.clone(), event));
        }
        if tx.state() == State::Terminated {
            self.machines.remove(key);
            if let Some(source) = self.origins.remove(key) {
                self.budget.give_back(source);
            }
            return;
        }
        let after = tx.poll_timeout();
        if let Some(at) = after
            && after != before
        {
            self.deadlines.push(Reverse((at, key.clone())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::{SentBy, Timer};
    use std::time::Duration;

    const B: &str = "z9hG4bKa1";

    fn src() -> IpAddr {
        IpAddr::from([192, 0, 2, 7])
    }

    fn skey(branch: &str, method: &str) -> TransactionKey {
        TransactionKey::server(branch, SentBy::new("five9.example", Some(5060)), method)
            .expect("valid key")
    }

    fn ckey(branch: &str, method: &str) -> TransactionKey {
        TransactionKey::client(branch, method).expect("valid key")
    }

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn ack_builder() -> AckBuilder<String> {
        Box::new(|_, response| format!("ACK {response}"))
    }

    /// Drains the transmits as (method of the transaction, message).
    fn sent(table: &mut Transactions<String>) -> Vec<(String, String)> {
        std::iter::from_fn(|| table.poll_transmit())
            .map(|t| (t.key.method().to_owned(), t.message))
            .collect()
    }

    fn events(table: &mut Transactions<String>) -> Vec<(TransactionKey, Event<String>)> {
        std::iter::from_fn(|| table.poll_event()).collect()
    }

    fn pair(method: &str, message: &str) -> (String, String) {
        (method.to_owned(), message.to_owned())
    }

    #[test]
    fn an_abandoned_invite_is_gone_and_says_so() {
        let t0 = Instant::now();
        let mut table = Transactions::default();
        let key = TransactionKey::client("z9hG4bKab1", "INVITE").expect("key");
        table
            .start_client_invite(
                t0,
                key.clone(),
                Reliability::Reliable,
                "INVITE".into(),
                ack_builder(),
            )
            .expect("new");
        sent(&mut table);
        assert!(matches!(
            table.handle_response(t0, &key, 180, "180".into()),
            Routed::Matched
        ));
        events(&mut table);
        assert!(table.abandon(&key));
        assert!(table.get(&key).is_none());
        assert!(table.is_empty());
        assert_eq!(events(&mut table), [(key.clone(), Event::Terminated)]);
        assert!(!table.abandon(&key), "once");
        // Its late 2xx matches nothing: the dialog layer ACKs it.
        assert!(matches!(
            table.handle_response(t0, &key, 200, "200".into()),
            Routed::Unmatched(_)
        ));
    }

    #[test]
    fn rfc_2543_invite_is_absorbed_and_its_ack_found_by_the_tag_we_added() {
        let t0 = Instant::now();
        let mut table = Transactions::default();
        let fields = |to_tag: Option<&str>| crate::transaction::Rfc2543Fields {
            request_uri: "sip:userb@example.com".into(),
            from_tag: None,
            to_tag: to_tag.map(String::from),
            call_id: "inv2543.1717".into(),
            cseq: 56,
            top_via: "sip/2.0/udp iftgw.example.com".into(),
        };
        let key = |to_tag, method| {
            TransactionKey::server_rfc2543(fields(to_tag), method).expect("valid key")
        };
        let invite = key(None, "INVITE");
        table
            .start_server_invite(
                t0,
                invite.clone(),
                Reliability::Unreliable,
                "100".into(),
                src(),
            )
            .expect("new");
        table
            .send_response(t0, &invite, 480, "480 tag=tl".into())
            .expect("sent");
        assert_eq!(sent(&mut table), [pair("INVITE", "480 tag=tl")]);
        // The retransmitted INVITE gets the 480 again instead of a new call.
        assert_eq!(
            table.handle_request(at(t0, 300), &invite, "INVITE".into()),
            Routed::Matched
        );
        assert_eq!(sent(&mut table), [pair("INVITE", "480 tag=tl")]);
        // The ACK carries our tag and ends the retransmissions (Confirmed).
        assert_eq!(
            table.handle_request(at(t0, 400), &key(Some("tl"), "ACK"), "ACK".into()),
            Routed::Matched
        );
        assert_eq!(table.state(&invite), Some(State::Confirmed));
        // Another call's ACK (another CSeq) matches nothing.
        let mut stray = fields(Some("tl"));
        stray.cseq = 57;
        let stray = TransactionKey::server_rfc2543(stray, "ACK").expect("valid key");
        assert!(matches!(
            table.handle_request(at(t0, 400), &stray, "ACK".into()),
            Routed::Unmatched(_)
        ));
    }

    #[test]
    fn incoming_invite_cancel_and_acks_are_routed_per_17_2_3() {
        let t0 = Instant::now();
        let mut table = Transactions::default();
        let invite = skey(B, "INVITE");
        let routed = table.handle_request(t0, &invite, "INVITE".to_owned());
        assert_eq!(routed, Routed::Unmatched("INVITE".to_owned()));
        table
            .start_server_invite(
                t0,
                invite.clone(),
                Reliability::Unreliable,
                "100".into(),
                src(),
            )
            .expect("new");
        let t = at(t0, 100);
        assert_eq!(
            table.handle_request(t, &invite, "INVITE".into()),
            Routed::Matched
        );

        // The CANCEL is new, and finds the INVITE still cancellable.
        let cancel = skey(B, "CANCEL");
        assert!(matches!(
            table.handle_request(t, &cancel, "CANCEL".into()),
            Routed::Unmatched(_)
        ));
        table
            .start_server(t, cancel.clone(), Reliability::Unreliable, src())
            .expect("new");
        let cancelled = cancel.cancelled_invite().expect("a CANCEL");
        assert_eq!(table.state(&cancelled), Some(State::Proceeding));
        table
            .send_response(t, &cancel, 200, "200 CANCEL".into())
            .expect("sent");
        table
            .send_response(t, &cancelled, 487, "487".into())
            .expect("sent");
        assert_eq!(
            table.handle_request(t, &cancel, "CANCEL".into()),
            Routed::Matched
        );

        // ACK for the 487 carries the INVITE's branch: it confirms.
        assert_eq!(
            table.handle_request(t, &skey(B, "ACK"), "ACK".into()),
            Routed::Matched
        );
        assert_eq!(table.state(&invite), Some(State::Confirmed));
        // ACK with a fresh branch (an ACK for a 2xx) is the dialog's.
        let other = skey("z9hG4bKb2", "ACK");
        assert_eq!(
            table.handle_request(t, &other, "ACK".into()),
            Routed::Unmatched("ACK".into())
        );

        assert_eq!(
            sent(&mut table),
            [
                pair("INVITE", "100"),
                pair("CANCEL", "200 CANCEL"),
                pair("INVITE", "487"),
                pair("CANCEL", "200 CANCEL"),
            ]
        );
        assert_eq!(events(&mut table), []);
    }

    #[test]
    fn responses_find_the_invite_or_its_cancel_by_cseq_method() {
        let t0 = Instant::now();
        let mut table = Transactions::default();
        let invite = ckey(B, "INVITE");
        let cancel = invite.cancel().expect("INVITE");
        let rel = Reliability::Reliable;
        table
            .start_client_invite(t0, invite.clone(), rel, "INVITE".into(), ack_builder())
            .expect("new");
        assert_eq!(
            table.handle_response(t0, &invite, 180, "180".into()),
            Routed::Matched
        );
        table
            .start_client(t0, cancel.clone(), rel, "CANCEL".into())
            .expect("new");
        let ok = ckey(B, "CANCEL");
        assert_eq!(
            table.handle_response(t0, &ok, 200, "200".into()),
            Routed::Matched
        );
        assert_eq!(
            table.handle_response(t0, &invite, 487, "487".into()),
            Routed::Matched
        );
        let stray = ckey("z9hG4bKzz", "INVITE");
        assert_eq!(
            table.handle_response(t0, &stray, 200, "200".into()),
            Routed::Unmatched("200".into())
        );
        // Over TCP both are done at once and reaped.
        assert!(table.is_empty());
        assert_eq!(
            sent(&mut table),
            [
                pair("INVITE", "INVITE"),
                pair("CANCEL", "CANCEL"),
                pair("INVITE", "ACK 487")
            ]
        );
        let response = |status: u16| Event::Response {
            status,
            response: status.to_string(),
        };
        assert_eq!(
            events(&mut table),
            [
                (invite.clone(), response(180)),
                (cancel.clone(), response(200)),
                (cancel, Event::Terminated),
                (invite.clone(), response(487)),
                (invite, Event::Terminated),
            ]
        );
    }

    #[test]
    fn poll_timeout_is_the_earliest_live_deadline_and_ended_ones_are_reaped() {
        let t0 = Instant::now();
        let mut table = Transactions::default();
        let invite = ckey(B, "INVITE");
        let bye = ckey("z9hG4bKbye", "BYE");
        let udp = Reliability::Unreliable;
        table
            .start_client_invite(t0, invite.clone(), udp, "INVITE".into(), ack_builder())
            .expect("new");
        table
            .start_client(at(t0, 100), bye.clone(), udp, "BYE".into())
            .expect("new");
        assert_eq!(table.poll_timeout(), Some(at(t0, 500)), "timer A");
        // The 180 cancels timer A; its old deadline must not be reported.
        let _ = table.handle_response(at(t0, 200), &invite, 180, "180".into());
        assert_eq!(table.poll_timeout(), Some(at(t0, 600)), "timer E");
        let _ = table.handle_response(at(t0, 1_000), &invite, 486, "486".into());
        assert_eq!(table.len(), 2);

        // The owner's event loop: sleep until the deadline, fire, repeat.
        let mut ends = vec![];
        while let Some(deadline) = table.poll_timeout() {
            table.handle_timeout(deadline);
            for (key, event) in events(&mut table) {
                if matches!(event, Event::Timeout(_) | Event::Terminated) {
                    ends.push(((deadline - t0).as_millis(), key.method().to_owned(), event));
                }
            }
        }
        assert_eq!(
            ends,
            [
                (32_100, "BYE".to_owned(), Event::Timeout(Timer::F)),
                (32_100, "BYE".to_owned(), Event::Terminated),
                (33_000, "INVITE".to_owned(), Event::Terminated),
            ]
        );
        assert!(table.is_empty());
        let byes = sent(&mut table).iter().filter(|(m, _)| m == "BYE").count();
        assert_eq!(byes, 11, "BYE sent once and retransmitted 10 times");
    }

    #[test]
    fn insert_takes_machines_with_their_own_timers() {
        let t0 = Instant::now();
        let mut table = Transactions::default();
        let lan = Timers {
            t1: Duration::from_millis(50),
            ..Timers::default()
        };
        let tx = Client::new(t0, Reliability::Unreliable, lan, "OPTIONS".to_owned());
        table.insert(ckey(B, "OPTIONS"), tx.into()).expect("new");
        assert_eq!(table.poll_timeout(), Some(at(t0, 50)));
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let t0 = Instant::now();
        let mut table = Transactions::default();
        let rel = Reliability::Reliable;
        let invite = skey(B, "INVITE");
        table
            .start_server_invite(t0, invite.clone(), rel, "100".into(), src())
            .expect("new");
        let cases: Vec<(Result<(), TableError>, TableError)> = vec![
            (
                table.start_server_invite(t0, invite.clone(), rel, "100".into(), src()),
                TableError::Exists(invite.clone()),
            ),
            (
                table.start_server(t0, skey(B, "ACK"), rel, src()),
                TableError::WrongKind {
                    key: skey(B, "ACK"),
                    kind: "non-INVITE server",
                },
            ),
            (
                table.start_client(t0, ckey(B, "INVITE"), rel, "INVITE".into()),
                TableError::WrongKind {
                    key: ckey(B, "INVITE"),
                    kind: "non-INVITE client",
                },
            ),
            (
                table.start_server(t0, ckey(B, "BYE"), rel, src()),
                TableError::WrongKind {
                    key: ckey(B, "BYE"),
                    kind: "non-INVITE server",
                },
            ),
            (
                table.send_response(t0, &skey("z9hG4bKgone", "BYE"), 200, "200".into()),
                TableError::NotFound(skey("z9hG4bKgone", "BYE")),
            ),
            (
                table.send_response(t0, &invite, 42, "42".into()),
                TableError::Response(ResponseError::InvalidStatus(42)),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, Err(want));
        }
        assert!(!table.handle_transport_error(t0, &skey("z9hG4bKgone", "BYE")));
        assert!(table.handle_transport_error(t0, &invite));
        assert_eq!(
            events(&mut table),
            [
                (invite.clone(), Event::TransportError),
                (invite, Event::Terminated)
            ]
        );
        assert!(table.is_empty());
    }

    #[test]
    fn server_caps_count_per_source_until_the_transaction_ends() {
        let t0 = Instant::now();
        let mut table: Transactions<String> = Transactions::default();
        table.limit_servers(ServerLimits {
            total: 3,
            per_source: 2,
        });
        let rel = Reliability::Unreliable;
        let other = IpAddr::from([192, 0, 2, 8]);
        table
            .start_server(t0, skey("z9hG4bK1", "OPTIONS"), rel, src())
            .expect("fits");
        table
            .start_server(t0, skey("z9hG4bK2", "OPTIONS"), rel, src())
            .expect("fits");
        assert_eq!(
            table.start_server(t0, skey("z9hG4bK3", "OPTIONS"), rel, src()),
            Err(TableError::Overloaded(Overload::Source(src())))
        );
        table
            .start_server_invite(t0, skey("z9hG4bK4", "INVITE"), rel, "100".into(), other)
            .expect("another source fits");
        assert_eq!(
            table.server_room(IpAddr::from([192, 0, 2, 9])),
            Err(Overload::Total)
        );
        assert_eq!(table.servers_open(src()), (2, 3));
        // The first one answered: Timer J (64·T1) later it ends, and its
        // source has room again.
        table
            .send_response(t0, &skey("z9hG4bK1", "OPTIONS"), 200, "200".into())
            .expect("answered");
        table.handle_timeout(at(t0, 64 * 500));
        assert_eq!(table.servers_open(src()), (1, 2));
        table
            .start_server(t0, skey("z9hG4bK3", "OPTIONS"), rel, src())
            .expect("room again");
    }
}
