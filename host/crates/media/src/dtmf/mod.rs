//! DTMF as RFC 4733 telephone-events: the payload, key-press detection, and
//! payload-type remapping between legs.
//!
//! Five9 IVRs and callers send key presses as telephone-event packets in the
//! RTP stream (never as in-band tones the relay would have to detect). The
//! relay forwards them to SIP agents with the agent leg's payload type
//! ([`PayloadTypeMap`]), and turns them into keys exactly once for WebSocket
//! and built-in agents ([`DtmfDetector`]).

pub mod detector;
pub mod event;
pub mod remap;

pub use detector::{Digit, DtmfDetector};
pub use event::{
    DtmfError, END_REPEATS, EVENT_LEN, TelephoneEvent, char_to_event, event_packets, event_to_char,
};
pub use remap::PayloadTypeMap;
