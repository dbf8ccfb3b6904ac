//! [`Transaction`]: one machine of any of the four kinds, so that the table
//! (and owners that keep machines themselves) can hold and drive them alike.

use std::time::Instant;

use super::{
    Client, ClientInvite, Event, Reliability, Role, Server, ServerInvite, State, TableError,
    TransactionKey,
};

/// One machine of any of the four kinds.
#[derive(Debug)]
pub enum Transaction<M> {
    /// INVITE client transaction.
    ClientInvite(ClientInvite<M>),
    /// Non-INVITE client transaction.
    Client(Client<M>),
    /// INVITE server transaction.
    ServerInvite(ServerInvite<M>),
    /// Non-INVITE server transaction.
    Server(Server<M>),
}

macro_rules! each {
    ($tx:expr, $m:ident => $body:expr) => {
        match $tx {
            Transaction::ClientInvite($m) => $body,
            Transaction::Client($m) => $body,
            Transaction::ServerInvite($m) => $body,
            Transaction::Server($m) => $body,
        }
    };
}

impl<M: Clone> Transaction<M> {
    /// Current state.
    pub fn state(&self) -> State {
        each!(self, m => m.state())
    }

    /// The transport reliability the transaction was created with.
    pub fn reliability(&self) -> Reliability {
        each!(self, m => m.reliability())
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        each!(self, m => m.poll_timeout())
    }

    /// Fires every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        each!(self, m => m.handle_timeout(now))
    }

    /// The transport could not deliver a message of this transaction.
    pub fn handle_transport_error(&mut self, now: Instant) {
        each!(self, m => m.handle_transport_error(now))
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<M> {
        each!(self, m => m.poll_transmit())
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<Event<M>> {
        each!(self, m => m.poll_event())
    }

    /// Whether `key` may name this kind of transaction.
    pub(super) fn fits(&self, key: &TransactionKey) -> Result<(), TableError> {
        let (kind, role, invite) = match self {
            Transaction::ClientInvite(_) => ("INVITE client", Role::Client, true),
            Transaction::Client(_) => ("non-INVITE client", Role::Client, false),
            Transaction::ServerInvite(_) => ("INVITE server", Role::Server, true),
            Transaction::Server(_) => ("non-INVITE server", Role::Server, false),
        };
        if key.role() == role && key.is_invite() == invite && !key.is_ack() {
            Ok(())
        } else {
            Err(TableError::WrongKind {
                key: key.clone(),
                kind,
            })
        }
    }
}

impl<M> From<ClientInvite<M>> for Transaction<M> {
    fn from(tx: ClientInvite<M>) -> Self {
        Self::ClientInvite(tx)
    }
}

impl<M> From<Client<M>> for Transaction<M> {
    fn from(tx: Client<M>) -> Self {
        Self::Client(tx)
    }
}

impl<M> From<ServerInvite<M>> for Transaction<M> {
    fn from(tx: ServerInvite<M>) -> Self {
        Self::ServerInvite(tx)
    }
}

impl<M> From<Server<M>> for Transaction<M> {
    fn from(tx: Server<M>) -> Self {
        Self::Server(tx)
    }
}
