//! Taps: a leg whose peer is in-process code rather than a UDP endpoint.
//!
//! A WebSocket or built-in agent does not speak RTP: it wants the caller's
//! audio as frames and hands back frames to play. A tap leg gives it exactly
//! that, on the relay's own path: frames toward the connector are the
//! caller's payloads after transcoding to the tap's law (so a μ-law
//! WebSocket agent gets μ-law whatever Five9 sent), and frames from the
//! connector are packetised with the tap's own SSRC and sequence, then go
//! through the caller leg's stream rewriter like any other source.
//!
//! Frames are fixed-size values, so channels move them without a heap
//! allocation per frame. DTMF reaches the session owner as
//! [`MediaEvent::Dtmf`](crate::MediaEvent::Dtmf); the owner passes it on.
//! The tap does not pace: a connector receiving bursts (WebSocket agents
//! often send faster than real time) must pace its frames to 20 ms itself.

use tokio::sync::mpsc;
use trunkline_media::g711::Law;

use crate::config::{LegCodec, LegParams};

/// Largest payload a frame carries: 60 ms of G.711.
pub const MAX_FRAME: usize = 480;

/// One frame of G.711 payload (usually 20 ms, 160 bytes), held inline.
#[derive(Clone, Copy)]
pub struct TapFrame {
    len: u16,
    data: [u8; MAX_FRAME],
}

impl TapFrame {
    /// A frame holding `payload`; `None` when longer than [`MAX_FRAME`].
    pub fn new(payload: &[u8]) -> Option<TapFrame> {
        let mut data = [0u8; MAX_FRAME];
        data.get_mut(..payload.len())?.copy_from_slice(payload);
        Some(TapFrame {
            len: payload.len() as u16,
            data,
        })
    }

    /// The G.711 codes, in the tap's law.
    pub fn payload(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for TapFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapFrame").field("len", &self.len).finish()
    }
}

/// The relay's end of a tap; pass it as a leg's transport.
#[derive(Debug)]
pub struct TapEnd {
    pub(crate) law: Law,
    pub(crate) to_connector: mpsc::Sender<TapFrame>,
    pub(crate) from_connector: mpsc::Receiver<TapFrame>,
}

impl TapEnd {
    /// Parameters for a tap leg: its law, sendrecv, no address. RTP payload
    /// type 0/8 is used internally for frames from the connector.
    pub fn params(&self) -> LegParams {
        LegParams::new(LegCodec::g711(self.law))
    }
}

/// The connector's end of a tap.
#[derive(Debug)]
pub struct TapHandle {
    /// The other leg's audio, transcoded to the tap's law, as it arrives.
    /// When the connector falls `capacity` frames behind, newer frames are
    /// dropped (counted as unroutable) instead of delaying the call.
    pub from_relay: mpsc::Receiver<TapFrame>,
    /// Frames to play to the other leg, paced by the connector.
    pub to_relay: mpsc::Sender<TapFrame>,
}

/// A tap carrying `law` frames, buffering up to `capacity` frames each way.
pub fn tap(law: Law, capacity: usize) -> (TapEnd, TapHandle) {
    let (to_connector, from_relay) = mpsc::channel(capacity.max(1));
    let (to_relay, from_connector) = mpsc::channel(capacity.max(1));
    (
        TapEnd {
            law,
            to_connector,
            from_connector,
        },
        TapHandle {
            from_relay,
            to_relay,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_hold_up_to_60_ms() {
        let frame = TapFrame::new(&[0xD5; 160]).unwrap();
        assert_eq!(frame.payload(), &[0xD5; 160][..]);
        assert!(TapFrame::new(&[0; MAX_FRAME]).is_some());
        assert!(TapFrame::new(&[0; MAX_FRAME + 1]).is_none());
    }

    #[test]
    fn tap_params_carry_its_law() {
        let (end, _handle) = tap(Law::Alaw, 4);
        let params = end.params();
        assert_eq!(params.codec.law, Law::Alaw);
        assert_eq!(params.codec.payload_type, 8);
        assert!(params.remote_rtp.is_none());
    }
}
