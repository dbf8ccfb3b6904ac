//! Per-leg stream continuity: one outgoing SSRC / sequence / timestamp space,
//! whatever happens upstream.
//!
//! A receiver's jitter buffer keys on SSRC and expects sequence numbers to
//! advance by one and timestamps by elapsed time. Upstream, the source changes:
//! an agent leg is replaced after a re-INVITE, the peer restarts its stream on
//! a codec change, a prompt player takes over. Forwarding those raw makes many
//! phones (and Five9's media servers) drop audio until they resynchronise, or
//! play it late. [`StreamRewriter`] hides the switch: the outgoing sequence
//! continues at +1, the timestamp advances by the wall-clock gap (at least one
//! frame), and the marker bit flags the new talkspurt so the far end re-centres
//! its buffer instead of treating the jump as clock drift.
//!
//! Within one incoming source the mapping is a fixed offset, so loss and
//! reordering stay visible to the receiver exactly as they happened. What the
//! relay drops on purpose (a peer that keeps sending on hold, comfort noise
//! the receiver did not agree to) is not loss: the caller reports it with
//! [`StreamRewriter::withheld`], and the next packet continues at +1 with the
//! marker bit, its timestamp advanced by the time that passed. Without that,
//! a six-second hold showed up at the far end as 300 lost packets.

use std::time::Instant;

use super::RtpPacketMut;

/// RFC 3550 A.1: a forward sequence jump larger than this is a restart.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: packets further behind than this are stale and dropped.
const MAX_MISORDER: u16 = 100;

/// Header values for an outgoing packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// The leg's SSRC.
    pub ssrc: u32,
    /// Outgoing sequence number.
    pub sequence: u16,
    /// Outgoing timestamp.
    pub timestamp: u32,
    /// Marker bit: the incoming one, or set on the first packet of a source.
    pub marker: bool,
}

/// The offsets for the current incoming source.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    /// Incoming SSRC this mapping applies to.
    ssrc: u32,
    /// Added (wrapping) to incoming sequence numbers.
    seq_offset: u16,
    /// Added (wrapping) to incoming timestamps.
    ts_offset: u32,
    /// Highest incoming sequence number seen (in RFC 3550 serial order).
    max_seq: u16,
    /// Incoming sequence number the mapping began with: an older packet
    /// would take an outgoing number already used before the mapping.
    first_seq: u16,
}

/// The newest packet sent, to continue from on a switch.
#[derive(Debug, Clone, Copy)]
struct LastSent {
    sequence: u16,
    timestamp: u32,
    at: Instant,
}

/// Maps incoming RTP streams onto one outgoing stream (see module docs).
#[derive(Debug, Clone)]
pub struct StreamRewriter {
    /// Outgoing SSRC, fixed for the leg.
    ssrc: u32,
    /// Clock rate of the outgoing payload, for converting gaps to ticks.
    clock_rate: u32,
    /// Sequence and timestamp of the very first packet.
    initial: (u16, u32),
    /// Current source, `None` before the first packet or after `resync`.
    mapping: Option<Mapping>,
    /// The source replaced by the current one: its late packets are dropped
    /// rather than switching back and forth.
    replaced: Option<u32>,
    /// Newest packet sent, `None` before the first.
    last: Option<LastSent>,
    /// Set by [`StreamRewriter::resync`]: remap on the next packet.
    resync_pending: bool,
    /// Set by [`StreamRewriter::withheld`]: remap the current source on its
    /// next newer packet, so that what was withheld leaves no hole.
    gap_pending: bool,
    /// Timestamp ticks per packet, learnt from consecutive packets.
    frame_ticks: u32,
}

impl StreamRewriter {
    /// A rewriter for a leg with SSRC `ssrc`, starting at `initial_sequence`
    /// and `initial_timestamp` (random per RFC 3550 §5.1; the caller draws
    /// them), for a payload clocked at `clock_rate` Hz.
    pub fn new(
        ssrc: u32,
        initial_sequence: u16,
        initial_timestamp: u32,
        clock_rate: u32,
    ) -> StreamRewriter {
        StreamRewriter {
            ssrc,
            clock_rate,
            initial: (initial_sequence, initial_timestamp),
            mapping: None,
            replaced: None,
            last: None,
            resync_pending: false,
            gap_pending: false,
            // 20 ms until learnt: the packetisation everyone in telephony uses.
            frame_ticks: (clock_rate / 50).max(1),
        }
    }

    /// Makes the next packet start a new mapping even from the same SSRC:
    /// call it when a re-INVITE or codec change may restart the peer's
    /// numbering. The outgoing stream still continues at +1.
    pub fn resync(&mut self) {
        self.resync_pending = true;
    }

    /// Reports an incoming packet that the caller dropped instead of
    /// rewriting it (hold, a payload type the receiver cannot take).
    ///
    /// The next newer packet of the same source continues our sequence at
    /// +1, so the receiver counts no loss, and carries the marker bit
    /// (RFC 3551 §4.1: the first packet of a talkspurt) with a timestamp
    /// advanced by the time since our last packet, so its jitter buffer
    /// re-centres instead of stretching the silence. A packet of another
    /// source, or one no newer than what was sent, changes nothing.
    pub fn withheld(&mut self, ssrc: u32, sequence: u16) {
        let Some(m) = self.mapping else {
            return; // nothing sent yet: the first packet starts the stream
        };
        let ahead = sequence.wrapping_sub(m.max_seq);
        if m.ssrc == ssrc && ahead != 0 && ahead < u16::MAX / 2 {
            self.gap_pending = true;
        }
    }

    /// Outgoing header values for an incoming packet, or `None` when the
    /// packet must be dropped (stale, or from the source that was replaced).
    pub fn map(
        &mut self,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        now: Instant,
    ) -> Option<Rewritten> {
        let (mapping, started) = match self.mapping {
            Some(m) if m.ssrc == ssrc && !self.resync_pending => {
                let ahead = sequence.wrapping_sub(m.max_seq);
                let before_start = sequence.wrapping_sub(m.first_seq) >= u16::MAX / 2;
                if self.gap_pending && (1..=MAX_DROPOUT).contains(&ahead) {
                    // The first packet after what the caller withheld.
                    (self.start(ssrc, sequence, timestamp, now), true)
                } else if ahead >= u16::MAX - MAX_MISORDER && before_start {
                    // Reordered from before the mapping: its number is taken.
                    return None;
                } else if ahead <= MAX_DROPOUT || ahead >= u16::MAX - MAX_MISORDER {
                    // In order, lost packets, or reordered: keep the offsets.
                    (m, false)
                } else if ahead >= u16::MAX / 2 {
                    // Far behind: audio too old to play.
                    return None;
                } else {
                    // Far ahead: the source restarted its numbering.
                    (self.start(ssrc, sequence, timestamp, now), true)
                }
            }
            Some(_) if self.replaced == Some(ssrc) && !self.resync_pending => return None,
            previous => {
                self.replaced = previous.map(|m| m.ssrc).filter(|old| *old != ssrc);
                self.resync_pending = false;
                (self.start(ssrc, sequence, timestamp, now), true)
            }
        };
        let out = Rewritten {
            ssrc: self.ssrc,
            sequence: sequence.wrapping_add(mapping.seq_offset),
            timestamp: timestamp.wrapping_add(mapping.ts_offset),
            marker: marker || started,
        };
        self.record(mapping, sequence, out, now);
        Some(out)
    }

    /// Rewrites a packet in place; returns false when it must be dropped.
    pub fn rewrite(&mut self, packet: &mut RtpPacketMut<'_>, now: Instant) -> bool {
        let mapped = self.map(
            packet.ssrc(),
            packet.sequence(),
            packet.timestamp(),
            packet.marker(),
            now,
        );
        let Some(out) = mapped else {
            return false;
        };
        packet.set_ssrc(out.ssrc);
        packet.set_sequence(out.sequence);
        packet.set_timestamp(out.timestamp);
        packet.set_marker(out.marker);
        true
    }

    /// Offsets that place (`sequence`, `timestamp`) right after the last
    /// packet sent, `now - last.at` later (at least one frame).
    fn start(&mut self, ssrc: u32, sequence: u16, timestamp: u32, now: Instant) -> Mapping {
        self.gap_pending = false;
        let (next_seq, next_ts) = match self.last {
            Some(last) => {
                let elapsed = now.saturating_duration_since(last.at);
                let ticks = elapsed.as_micros() * u128::from(self.clock_rate) / 1_000_000;
                let gap = u32::try_from(ticks)
                    .unwrap_or(u32::MAX / 2)
                    .max(self.frame_ticks);
                (
                    last.sequence.wrapping_add(1),
                    last.timestamp.wrapping_add(gap),
                )
            }
            None => self.initial,
        };
        Mapping {
            ssrc,
            seq_offset: next_seq.wrapping_sub(sequence),
            ts_offset: next_ts.wrapping_sub(timestamp),
            max_seq: sequence,
            first_seq: sequence,
        }
    }

    fn record(&mut self, mut mapping: Mapping, sequence: u16, out: Rewritten, now: Instant) {
        let ahead = sequence.wrapping_sub(mapping.max_seq);
        let newest = ahead < u16::MAX / 2;
        if newest {
            if let Some(last) = self.last
                && ahead == 1
            {
                let ticks = out.timestamp.wrapping_sub(last.timestamp);
                // Only audio-frame-like steps; DTMF repeats a timestamp.
                if ticks > 0 && ticks <= self.clock_rate {
                    self.frame_ticks = ticks;
                }
            }
            mapping.max_seq = sequence;
            self.last = Some(LastSent {
                sequence: out.sequence,
                timestamp: out.timestamp,
                at: now,
            });
        }
        self.mapping = Some(mapping);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const OUT_SSRC: u32 = 0x5EED;

    /// Feeds packets 20 ms apart; returns the outgoing (seq, ts, marker).
    struct Leg {
        rewriter: StreamRewriter,
        now: Instant,
    }

    impl Leg {
        fn new() -> Leg {
            Leg {
                rewriter: StreamRewriter::new(OUT_SSRC, 1000, 50_000, 8000),
                now: Instant::now(),
            }
        }

        fn send(&mut self, ssrc: u32, seq: u16, ts: u32) -> Option<(u16, u32, bool)> {
            let out = self.rewriter.map(ssrc, seq, ts, false, self.now)?;
            assert_eq!(out.ssrc, OUT_SSRC);
            Some((out.sequence, out.timestamp, out.marker))
        }

        fn wait(&mut self, ms: u64) {
            self.now += Duration::from_millis(ms);
        }
    }

    #[test]
    fn first_source_is_mapped_onto_the_leg_numbering() {
        let mut leg = Leg::new();
        assert_eq!(leg.send(7, 300, 9_000), Some((1000, 50_000, true)));
        leg.wait(20);
        assert_eq!(leg.send(7, 301, 9_160), Some((1001, 50_160, false)));
    }

    #[test]
    fn new_source_continues_without_a_jump() {
        let mut leg = Leg::new();
        for i in 0..5u16 {
            leg.send(1, 100 + i, 160 * u32::from(i)).unwrap();
            leg.wait(20);
        }
        // Agent replaced after a re-INVITE: wholly different numbering.
        assert_eq!(leg.send(2, 60_000, 123_456_789), Some((1005, 50_800, true)));
        leg.wait(20);
        assert_eq!(
            leg.send(2, 60_001, 123_456_949),
            Some((1006, 50_960, false))
        );
    }

    #[test]
    fn timestamp_gap_follows_wall_clock_across_a_switch() {
        let mut leg = Leg::new();
        leg.send(1, 0, 0).unwrap();
        leg.wait(2000);
        // Two seconds of silence between sources: 16000 ticks at 8 kHz.
        assert_eq!(leg.send(2, 5, 5), Some((1001, 50_000 + 16_000, true)));
    }

    #[test]
    fn late_packets_of_the_replaced_source_are_dropped() {
        let mut leg = Leg::new();
        leg.send(1, 10, 0).unwrap();
        leg.wait(20);
        leg.send(2, 500, 0).unwrap();
        assert_eq!(
            leg.send(1, 11, 160),
            None,
            "no flapping back to the old source"
        );
        assert_eq!(leg.send(2, 501, 160).map(|o| o.0), Some(1002));
    }

    #[test]
    fn loss_and_reordering_pass_through_unchanged() {
        let mut leg = Leg::new();
        let seqs = [10u16, 12, 11, 15];
        let out: Vec<u16> = seqs
            .iter()
            .map(|&s| leg.send(9, s, u32::from(s) * 160).unwrap().0)
            .collect();
        assert_eq!(out, [1000, 1002, 1001, 1005]);
    }

    #[test]
    fn sequence_and_timestamp_wrap_around() {
        let mut leg = Leg {
            rewriter: StreamRewriter::new(OUT_SSRC, 65_534, u32::MAX - 100, 8000),
            now: Instant::now(),
        };
        assert_eq!(leg.send(3, 0, 0), Some((65_534, u32::MAX - 100, true)));
        assert_eq!(leg.send(3, 1, 160), Some((65_535, 59, false)));
        assert_eq!(leg.send(3, 2, 320), Some((0, 219, false)));
        // And the incoming side wrapping.
        let mut leg = Leg::new();
        leg.send(3, 65_535, 0).unwrap();
        assert_eq!(leg.send(3, 0, 160).map(|o| o.0), Some(1001));
    }

    #[test]
    fn restart_within_one_ssrc_is_smoothed_and_stale_audio_dropped() {
        let mut leg = Leg::new();
        leg.send(4, 20_000, 0).unwrap();
        leg.wait(20);
        leg.send(4, 20_001, 160).unwrap();
        leg.wait(20);
        // Far ahead: a restarted stream (codec change keeping the SSRC).
        assert_eq!(leg.send(4, 40_000, 777), Some((1002, 50_320, true)));
        // Far behind: stale.
        assert_eq!(leg.send(4, 39_000, 0), None);
    }

    #[test]
    fn resync_remaps_the_same_ssrc_and_learns_the_frame_size() {
        let mut leg = Leg::new();
        // 30 ms packets at 8 kHz: 240 ticks, learnt from consecutive packets.
        leg.send(5, 1, 0).unwrap();
        leg.send(5, 2, 240).unwrap();
        leg.rewriter.resync();
        // Arrives "immediately": the gap is one learnt frame, not 20 ms.
        assert_eq!(leg.send(5, 1, 0), Some((1002, 50_480, true)));
    }

    #[test]
    fn packets_withheld_on_hold_leave_no_hole_and_resume_with_the_marker() {
        let mut leg = Leg::new();
        for i in 0..5u16 {
            assert_eq!(
                leg.send(7, 100 + i, 160 * u32::from(i)).unwrap().0,
                1000 + i
            );
            leg.wait(20);
        }
        // Six seconds of hold: the peer keeps sending, the relay drops all.
        for i in 5..305u16 {
            leg.rewriter.withheld(7, 100 + i);
            leg.wait(20);
        }
        // Resume: sequence +1, marker, timestamp 6 s (48000 ticks) plus the
        // 20 ms frame after the last packet sent (50_640).
        let resumed = leg.send(7, 405, 160 * 305).unwrap();
        assert_eq!(resumed, (1005, 50_640 + 48_160, true));
        leg.wait(20);
        let next = leg.send(7, 406, 160 * 306).unwrap();
        assert_eq!(next, (1006, 50_640 + 48_320, false));
        // A late pre-hold packet would take a number already sent.
        assert_eq!(leg.send(7, 104, 160 * 4), None);
    }

    #[test]
    fn one_dropped_packet_is_a_talkspurt_start_not_a_loss() {
        let mut leg = Leg::new();
        leg.send(3, 10, 0).unwrap();
        leg.wait(20);
        leg.rewriter.withheld(3, 11); // comfort noise nobody agreed to
        leg.wait(20);
        assert_eq!(leg.send(3, 12, 320), Some((1001, 50_320, true)));
        leg.wait(20);
        assert_eq!(leg.send(3, 13, 480), Some((1002, 50_480, false)));
    }

    #[test]
    fn withheld_packets_of_other_sources_or_the_past_change_nothing() {
        let mut leg = Leg::new();
        leg.send(1, 50, 0).unwrap();
        leg.wait(20);
        leg.send(1, 51, 160).unwrap();
        leg.rewriter.withheld(2, 52); // another SSRC (an event stream)
        leg.rewriter.withheld(1, 51); // a duplicate of what was sent
        leg.rewriter.withheld(1, 49); // reordered, from before
        leg.wait(20);
        assert_eq!(leg.send(1, 52, 320), Some((1002, 50_320, false)));
        // Withheld before anything was sent: the stream simply starts.
        let mut fresh = Leg::new();
        fresh.rewriter.withheld(1, 7);
        assert_eq!(fresh.send(1, 8, 0), Some((1000, 50_000, true)));
    }

    #[test]
    fn rewrite_edits_the_packet_in_place() {
        use crate::rtp::{RtpHeader, RtpPacket};
        let mut buf = [0u8; 172];
        let header = RtpHeader {
            payload_type: 0,
            sequence: 9,
            timestamp: 99,
            ssrc: 77,
            marker: false,
        };
        let len = header.write_packet(&[0xFF; 160], &mut buf).unwrap();
        let mut rw = StreamRewriter::new(OUT_SSRC, 1, 2, 8000);
        let mut packet = RtpPacketMut::parse(&mut buf[..len]).unwrap();
        assert!(rw.rewrite(&mut packet, Instant::now()));
        let p = RtpPacket::parse(&buf[..len]).unwrap();
        assert_eq!(
            (p.ssrc(), p.sequence(), p.timestamp(), p.marker()),
            (OUT_SSRC, 1, 2, true)
        );
        assert_eq!(p.payload(), [0xFF; 160]);
    }
}
