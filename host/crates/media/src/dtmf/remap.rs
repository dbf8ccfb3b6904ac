//! Payload-type remapping between legs.
//!
//! Each leg numbers its dynamic payload types itself: Five9 may send
//! telephone-event as 101 while the agent answered 96. Forwarding 101 to the
//! agent makes it ignore (or, worse, decode as audio) every key press, so the
//! relay rewrites the payload type of every forwarded packet through this map.
//! Also used for audio payload types when no transcoding happens.

use crate::rtp::RtpPacketMut;
use crate::sdp::Codec;

/// Marks an unmapped entry.
const NONE: u8 = 0xFF;

/// Incoming payload type to outgoing payload type (a 128-byte table: one
/// lookup per packet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadTypeMap {
    table: [u8; 128],
}

impl Default for PayloadTypeMap {
    fn default() -> PayloadTypeMap {
        PayloadTypeMap { table: [NONE; 128] }
    }
}

impl PayloadTypeMap {
    /// An empty map: every payload type is unmapped.
    pub fn new() -> PayloadTypeMap {
        PayloadTypeMap::default()
    }

    /// Maps incoming `from` to outgoing `to` (both 0-127; others are ignored).
    pub fn insert(&mut self, from: u8, to: u8) {
        if from < 128 && to < 128 {
            self.table[from as usize] = to;
        }
    }

    /// The outgoing payload type for `pt`, if mapped.
    pub fn get(&self, pt: u8) -> Option<u8> {
        self.table
            .get(pt as usize)
            .copied()
            .filter(|&to| to != NONE)
    }

    /// Maps each codec of the incoming leg to the same format on the
    /// outgoing leg (by name, clock rate and channels), where there is one.
    pub fn between(incoming: &[Codec], outgoing: &[Codec]) -> PayloadTypeMap {
        let mut map = PayloadTypeMap::new();
        for codec in incoming {
            if let Some(out) = outgoing.iter().find(|o| o.same_format(codec)) {
                map.insert(codec.payload_type, out.payload_type);
            }
        }
        map
    }

    /// Rewrites a packet's payload type; false (packet untouched) when its
    /// type is unmapped and the packet should not be forwarded.
    pub fn apply(&self, packet: &mut RtpPacketMut<'_>) -> bool {
        match self.get(packet.payload_type()) {
            Some(pt) => {
                packet.set_payload_type(pt);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{RtpHeader, RtpPacket};

    #[test]
    fn events_follow_each_legs_numbering() {
        let five9 = [Codec::pcmu(), Codec::telephone_event(101)];
        let agent = [Codec::pcmu(), Codec::opus(111), Codec::telephone_event(96)];
        let map = PayloadTypeMap::between(&five9, &agent);
        assert_eq!(map.get(101), Some(96));
        assert_eq!(map.get(0), Some(0));
        assert_eq!(map.get(8), None, "PCMA not on the agent leg");
        assert_eq!(map.get(200), None);
        let back = PayloadTypeMap::between(&agent, &five9);
        assert_eq!(back.get(96), Some(101));
        assert_eq!(back.get(111), None, "opus never goes to Five9 untranscoded");
    }

    #[test]
    fn apply_rewrites_only_mapped_packets() {
        let mut map = PayloadTypeMap::new();
        map.insert(101, 96);
        map.insert(130, 1); // out of range: ignored
        assert_eq!(map.get(130 - 128), None);
        let mut buf = [0u8; 16];
        let header = RtpHeader {
            marker: true,
            payload_type: 101,
            sequence: 1,
            timestamp: 2,
            ssrc: 3,
        };
        let len = header.write_packet(&[1, 0x8A, 0, 160], &mut buf).unwrap();
        assert!(map.apply(&mut RtpPacketMut::parse(&mut buf[..len]).unwrap()));
        let p = RtpPacket::parse(&buf[..len]).unwrap();
        assert_eq!((p.payload_type(), p.marker()), (96, true), "marker kept");
        let mut pcma = buf;
        pcma[1] = 8;
        assert!(!map.apply(&mut RtpPacketMut::parse(&mut pcma[..len]).unwrap()));
        assert_eq!(pcma[1], 8);
    }
}
