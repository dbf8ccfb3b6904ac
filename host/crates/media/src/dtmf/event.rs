//! The RFC 4733 telephone-event payload, and the packet train that carries
//! one key press.
//!
//! ```text
//!  0                   1                   2                   3
//! |     event     |E|R|  volume   |           duration            |
//! ```
//! One key press is several packets sharing one RTP timestamp (the event's
//! start): updates with a growing duration, then the final duration with the E
//! bit, sent three times because a lost end packet would leave the receiver
//! playing the tone forever (RFC 4733 §2.5.1.4).

use thiserror::Error;

/// Size of one event in a payload.
pub const EVENT_LEN: usize = 4;

/// End-packet copies sent for every event (RFC 4733 recommends three).
pub const END_REPEATS: usize = 3;

/// Why a telephone-event payload cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DtmfError {
    /// Fewer than four bytes.
    #[error("telephone-event payload too short ({0} bytes)")]
    TooShort(usize),
    /// The output buffer cannot hold the event.
    #[error("output buffer too small for a telephone-event")]
    BufferTooSmall,
}

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TelephoneEvent {
    /// Event code: 0-9 digits, 10 `*`, 11 `#`, 12-15 A-D, 16 flash.
    pub event: u8,
    /// E bit: this is (a copy of) the last packet of the event.
    pub end: bool,
    /// Power level in -dBm0 (0-63; larger is quieter).
    pub volume: u8,
    /// Duration so far, in RTP clock ticks since the event's timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first event of a payload (later ones are RFC 2198 redundancy).
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, DtmfError> {
        let b = payload
            .get(..EVENT_LEN)
            .ok_or(DtmfError::TooShort(payload.len()))?;
        Ok(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            // The R bit is reserved: ignored on receipt.
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Writes the event into `out`; returns 4.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, DtmfError> {
        let b = out.get_mut(..EVENT_LEN).ok_or(DtmfError::BufferTooSmall)?;
        b[0] = self.event;
        b[1] = (self.volume & 0x3F) | if self.end { 0x80 } else { 0 };
        b[2..4].copy_from_slice(&self.duration.to_be_bytes());
        Ok(EVENT_LEN)
    }

    /// The key this event stands for, if it is a DTMF key.
    pub fn digit(&self) -> Option<char> {
        event_to_char(self.event)
    }
}

/// DTMF key of an event code (RFC 4733 §3.2): `0`-`9`, `*`, `#`, `A`-`D`.
pub fn event_to_char(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => return None,
    })
}

/// Event code of a DTMF key (case-insensitive for `A`-`D`).
pub fn char_to_event(key: char) -> Option<u8> {
    Some(match key.to_ascii_uppercase() {
        c @ '0'..='9' => c as u8 - b'0',
        '*' => 10,
        '#' => 11,
        c @ 'A'..='D' => c as u8 - b'A' + 12,
        _ => return None,
    })
}

/// The packets of one key press, for a sender: each item is (marker bit,
/// payload). All share the event's RTP timestamp; each needs its own
/// sequence number. The first carries the marker (RFC 4733 §2.5.1.2), the
/// last [`END_REPEATS`] carry the E bit and the total duration.
pub fn event_packets(
    event: u8,
    volume: u8,
    duration: u16,
    interval: u16,
) -> impl Iterator<Item = (bool, TelephoneEvent)> {
    let interval = interval.max(1);
    // Updates at interval, 2*interval, ... strictly below the total.
    let updates = duration.saturating_sub(1) / interval;
    let update = move |i: u16| TelephoneEvent {
        event,
        end: false,
        volume,
        duration: interval * (i + 1),
    };
    let end = TelephoneEvent {
        event,
        end: true,
        volume,
        duration,
    };
    (0..updates)
        .map(update)
        .chain(std::iter::repeat_n(end, END_REPEATS))
        .enumerate()
        .map(|(i, e)| (i == 0, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_write_round_trip() {
        let cases: &[([u8; 4], TelephoneEvent)] = &[
            (
                [5, 0x0A, 0x03, 0x20],
                TelephoneEvent {
                    event: 5,
                    end: false,
                    volume: 10,
                    duration: 800,
                },
            ),
            (
                [11, 0x8A, 0x06, 0x40],
                TelephoneEvent {
                    event: 11,
                    end: true,
                    volume: 10,
                    duration: 1600,
                },
            ),
            (
                [16, 0x3F, 0xFF, 0xFF],
                TelephoneEvent {
                    event: 16,
                    end: false,
                    volume: 63,
                    duration: 65535,
                },
            ),
        ];
        for (bytes, event) in cases {
            assert_eq!(TelephoneEvent::parse(bytes), Ok(*event));
            let mut out = [0u8; 4];
            assert_eq!(event.write(&mut out), Ok(4));
            assert_eq!(&out, bytes);
        }
        // Reserved bit set by a sloppy sender is ignored.
        assert_eq!(TelephoneEvent::parse(&[1, 0xCA, 0, 0]).unwrap().volume, 10);
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(DtmfError::TooShort(3))
        );
        assert_eq!(
            TelephoneEvent::default().write(&mut [0; 3]),
            Err(DtmfError::BufferTooSmall)
        );
    }

    #[test]
    fn keys_map_both_ways() {
        for (event, key) in (0u8..16).zip("0123456789*#ABCD".chars()) {
            assert_eq!(event_to_char(event), Some(key));
            assert_eq!(char_to_event(key), Some(event));
        }
        assert_eq!(char_to_event('b'), Some(13));
        assert_eq!(event_to_char(16), None, "flash is not a key");
        assert_eq!(char_to_event('E'), None);
    }

    #[test]
    fn a_key_press_is_updates_then_three_ends() {
        // 100 ms at 8 kHz, packets every 20 ms.
        let packets: Vec<_> = event_packets(1, 10, 800, 160).collect();
        let durations: Vec<u16> = packets.iter().map(|(_, e)| e.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends = packets.iter().filter(|(_, e)| e.end).count();
        assert_eq!(ends, END_REPEATS);
        assert!(packets[0].0, "first packet carries the marker");
        assert!(packets[1..].iter().all(|(m, _)| !m));
        // A press shorter than one interval is only its end packets.
        let short: Vec<_> = event_packets(2, 10, 100, 160).collect();
        assert_eq!(short.len(), 3);
        assert!(short[0].0 && short[0].1.end);
    }
}
