//! Telephone-event packets to key presses, exactly once each.
//!
//! A key press arrives as many packets sharing one RTP timestamp, the last
//! three with the E bit. Acting on every packet would press the key several
//! times in the agent's menu; acting only on the first E packet loses the key
//! when all three are dropped. So the detector keys each press by its
//! timestamp and reports it once:
//! - when its first E packet arrives, with the final duration;
//! - or, when a packet of a *newer* press arrives first, with the duration
//!   seen so far (its end packets were lost);
//! - or on [`DtmfDetector::flush`], which the relay calls when event packets
//!   stop (e.g. no event packet for a second) or the stream ends.
//!
//! Later packets of a reported press (the repeated E packets, reordered
//! updates) are ignored. Sans-IO: [`DtmfDetector::handle`] takes a packet,
//! [`DtmfDetector::poll`] hands out what was detected.

use super::{DtmfError, TelephoneEvent, event_to_char};

/// Reported presses remembered to swallow their late copies.
const REMEMBERED: usize = 8;
/// At most two presses are reported by one packet (the unfinished one and
/// the packet's own).
const QUEUE: usize = 2;

/// One key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// Event code (see [`TelephoneEvent::event`]).
    pub event: u8,
    /// The key, for DTMF events.
    pub key: Option<char>,
    /// RTP timestamp of the press (its start).
    pub timestamp: u32,
    /// Duration in RTP clock ticks (as far as seen when ends were lost).
    pub duration: u16,
    /// False when reported without an end packet.
    pub ended: bool,
}

/// The press being received.
#[derive(Debug, Clone, Copy)]
struct Active {
    event: u8,
    timestamp: u32,
    duration: u16,
}

/// Turns a stream of telephone-event payloads into key presses.
#[derive(Debug, Clone, Default)]
pub struct DtmfDetector {
    /// Press under way, not reported yet.
    active: Option<Active>,
    /// Timestamps of reported presses (ring buffer).
    reported: [Option<u32>; REMEMBERED],
    /// Next slot of `reported` to overwrite.
    next_slot: usize,
    /// Detected presses not yet polled, oldest first.
    queue: [Option<Digit>; QUEUE],
}

impl DtmfDetector {
    /// A detector with nothing seen.
    pub fn new() -> DtmfDetector {
        DtmfDetector::default()
    }

    /// Takes one telephone-event packet's timestamp and payload.
    pub fn handle(&mut self, timestamp: u32, payload: &[u8]) -> Result<(), DtmfError> {
        let e = TelephoneEvent::parse(payload)?;
        if self.reported.contains(&Some(timestamp)) {
            return Ok(());
        }
        let active = match self.active {
            Some(a) if a.timestamp == timestamp => Active {
                duration: a.duration.max(e.duration),
                ..a
            },
            Some(a) if is_older(timestamp, a.timestamp) => {
                // A straggler from before the current press: already lost.
                return Ok(());
            }
            previous => {
                if let Some(p) = previous {
                    self.report(p, false);
                }
                Active {
                    event: e.event,
                    timestamp,
                    duration: e.duration,
                }
            }
        };
        if e.end {
            self.active = None;
            self.report(active, true);
        } else {
            self.active = Some(active);
        }
        Ok(())
    }

    /// Reports the press under way, if any, as if it had ended.
    pub fn flush(&mut self) {
        if let Some(a) = self.active.take() {
            self.report(a, false);
        }
    }

    /// The next detected press, oldest first.
    pub fn poll(&mut self) -> Option<Digit> {
        let first = self.queue[0].take();
        self.queue.rotate_left(1);
        first
    }

    /// Forgets everything: call when the incoming SSRC changes, since
    /// timestamps of another source say nothing about this one's.
    pub fn reset(&mut self) {
        *self = DtmfDetector::default();
    }

    fn report(&mut self, a: Active, ended: bool) {
        self.reported[self.next_slot] = Some(a.timestamp);
        self.next_slot = (self.next_slot + 1) % REMEMBERED;
        let digit = Digit {
            event: a.event,
            key: event_to_char(a.event),
            timestamp: a.timestamp,
            duration: a.duration,
            ended,
        };
        // If the caller never polls, the oldest unpolled press is replaced:
        // the newest input is what an agent should act on.
        match self.queue.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(digit),
            None => {
                self.queue.rotate_left(1);
                self.queue[QUEUE - 1] = Some(digit);
            }
        }
    }
}

/// RFC 3550 serial-number comparison for 32-bit timestamps.
fn is_older(ts: u32, than: u32) -> bool {
    ts != than && than.wrapping_sub(ts) < u32::MAX / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::event_packets;

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        let mut b = [0u8; 4];
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .write(&mut b)
        .unwrap();
        b
    }

    fn keys(d: &mut DtmfDetector) -> String {
        std::iter::from_fn(|| d.poll())
            .filter_map(|x| x.key)
            .collect()
    }

    #[test]
    fn each_press_is_reported_once_despite_end_repeats() {
        let mut d = DtmfDetector::new();
        let mut heard = String::new();
        for (i, key) in [1u8, 2, 2, 11].into_iter().enumerate() {
            let ts = 8000 * i as u32;
            for (_, e) in event_packets(key, 10, 800, 160) {
                let mut b = [0u8; 4];
                e.write(&mut b).unwrap();
                d.handle(ts, &b).unwrap();
                heard += &keys(&mut d);
            }
        }
        assert_eq!(heard, "122#", "a repeated key is two presses");
    }

    #[test]
    fn end_report_carries_final_duration() {
        let mut d = DtmfDetector::new();
        d.handle(100, &payload(5, false, 160)).unwrap();
        assert_eq!(d.poll(), None, "not reported before it ends");
        d.handle(100, &payload(5, true, 1200)).unwrap();
        let digit = d.poll().unwrap();
        assert_eq!(
            (digit.key, digit.duration, digit.ended),
            (Some('5'), 1200, true)
        );
    }

    #[test]
    fn lost_end_packets_are_covered_by_the_next_press_or_flush() {
        let mut d = DtmfDetector::new();
        d.handle(1000, &payload(3, false, 320)).unwrap();
        // Next press arrives with only an end packet: both are reported, in order.
        d.handle(9000, &payload(4, true, 400)).unwrap();
        let first = d.poll().unwrap();
        assert_eq!(
            (first.key, first.duration, first.ended),
            (Some('3'), 320, false)
        );
        assert_eq!(d.poll().map(|x| x.key), Some(Some('4')));
        d.handle(20_000, &payload(10, false, 160)).unwrap();
        d.flush();
        assert_eq!(keys(&mut d), "*");
        d.flush();
        assert_eq!(d.poll(), None);
    }

    #[test]
    fn stragglers_and_late_copies_are_ignored() {
        let mut d = DtmfDetector::new();
        d.handle(5000, &payload(7, true, 800)).unwrap();
        d.handle(5000, &payload(7, false, 640)).unwrap(); // reordered update
        d.handle(5000, &payload(7, true, 800)).unwrap();
        d.handle(6000, &payload(8, false, 160)).unwrap();
        d.handle(5500, &payload(9, false, 160)).unwrap(); // older than current
        d.handle(6000, &payload(8, true, 480)).unwrap();
        assert_eq!(keys(&mut d), "78");
    }

    #[test]
    fn timestamps_wrap_and_reset_forgets() {
        let mut d = DtmfDetector::new();
        d.handle(u32::MAX - 10, &payload(1, false, 160)).unwrap();
        d.handle(200, &payload(2, true, 160)).unwrap(); // newer across the wrap
        assert_eq!(keys(&mut d), "12");
        d.reset();
        d.handle(200, &payload(2, true, 160)).unwrap();
        assert_eq!(keys(&mut d), "2", "new source may reuse a timestamp");
        assert_eq!(d.handle(1, &[0, 0]), Err(DtmfError::TooShort(2)));
    }
}
