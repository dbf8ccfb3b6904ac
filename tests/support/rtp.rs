//! A small RTP peer for the media tests: sends 20 ms G.711 packets carrying a
//! tone (or RFC 4733 key presses), collects what arrives, and measures the
//! received audio's frequency and signal-to-noise ratio.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use trunkline_media::g711;

use super::sipp::loopback;

/// G.711's sample rate.
pub const RATE: f64 = 8000.0;
/// Samples in one 20 ms packet.
pub const FRAME: usize = 160;
/// Static payload types.
pub const PCMU: u8 = 0;
pub const PCMA: u8 = 8;

/// One received RTP packet.
#[derive(Clone, Debug)]
pub struct Packet {
    pub from: SocketAddr,
    pub at: Instant,
    pub pt: u8,
    pub marker: bool,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

impl Packet {
    /// Parses a datagram as RTP version 2 (no CSRCs or extension expected
    /// from the relay, but both are skipped).
    pub fn parse(from: SocketAddr, b: &[u8]) -> Option<Packet> {
        if b.len() < 12 || b[0] >> 6 != 2 {
            return None;
        }
        let cc = usize::from(b[0] & 0x0f);
        let mut start = 12 + 4 * cc;
        if b[0] & 0x10 != 0 {
            let words = u16::from_be_bytes([*b.get(start + 2)?, *b.get(start + 3)?]);
            start += 4 + 4 * usize::from(words);
        }
        let mut end = b.len();
        if b[0] & 0x20 != 0 {
            end = end.checked_sub(usize::from(*b.last()?))?;
        }
        Some(Packet {
            from,
            at: Instant::now(),
            pt: b[1] & 0x7f,
            marker: b[1] & 0x80 != 0,
            seq: u16::from_be_bytes([b[2], b[3]]),
            ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            payload: b.get(start..end)?.to_vec(),
        })
    }
}

/// An RTP datagram.
pub fn packet(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + payload.len());
    out.push(0x80);
    out.push(pt | if marker { 0x80 } else { 0 });
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ts.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// `n` samples of a sine at `freq` Hz, amplitude `amp`, from sample `start`.
pub fn tone(freq: f64, amp: f64, start: u64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = (start + i as u64) as f64 / RATE;
            (amp * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        })
        .collect()
}

/// G.711 encoding of `samples` for payload type `pt` (0 or 8).
pub fn encode(pt: u8, samples: &[i16]) -> Vec<u8> {
    let mut out = vec![0; samples.len()];
    match pt {
        PCMU => g711::encode_ulaw(samples, &mut out),
        PCMA => g711::encode_alaw(samples, &mut out),
        _ => panic!("payload type {pt} is not G.711"),
    };
    out
}

/// Linear samples of a G.711 payload of type `pt`; `None` for other types.
pub fn decode(pt: u8, payload: &[u8]) -> Option<Vec<i16>> {
    let mut out = vec![0; payload.len()];
    match pt {
        PCMU => g711::decode_ulaw(payload, &mut out),
        PCMA => g711::decode_alaw(payload, &mut out),
        _ => return None,
    };
    Some(out)
}

/// An RTP endpoint on its own loopback address.
pub struct RtpPeer {
    pub sock: UdpSocket,
    pub addr: SocketAddr,
}

impl RtpPeer {
    pub fn bind() -> RtpPeer {
        let addr = loopback();
        let sock = UdpSocket::bind(addr).expect("binding the RTP peer");
        RtpPeer { sock, addr }
    }

    /// Everything of `pt` (any type when `None`) arriving within `d`.
    pub fn collect(&self, d: Duration, pt: Option<u8>) -> Vec<Packet> {
        let until = Instant::now() + d;
        let mut buf = [0u8; 2048];
        let mut out = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            self.sock
                .set_read_timeout(Some(left.min(Duration::from_millis(50))))
                .expect("read timeout");
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if let Some(p) = Packet::parse(from, &buf[..n])
                        && pt.is_none_or(|t| t == p.pt)
                    {
                        out.push(p);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("receiving RTP: {e}"),
            }
        }
    }

    /// Discards whatever is queued.
    pub fn drain(&self) {
        let _ = self.collect(Duration::from_millis(60), None);
    }

    /// Starts sending a `freq` Hz tone as `pt` to `to` every 20 ms from this
    /// peer's socket, until the returned handle is stopped or dropped.
    pub fn send_tone(&self, to: SocketAddr, pt: u8, freq: f64) -> ToneSender {
        self.send_tone_every(to, pt, freq, 20)
    }

    /// [`RtpPeer::send_tone`] in packets of `ptime_ms` (SIPp's stock
    /// `g711a.pcap` sends 30 ms).
    pub fn send_tone_every(&self, to: SocketAddr, pt: u8, freq: f64, ptime_ms: u64) -> ToneSender {
        let sock = self.sock.try_clone().expect("cloning the RTP socket");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let samples_per_packet = (8 * ptime_ms) as usize;
        let thread = std::thread::spawn(move || {
            let ssrc = 0x5eed_0000 | u32::from(to.port());
            let start = Instant::now();
            let mut n: u64 = 0;
            while !flag.load(Ordering::Relaxed) {
                let first = n * samples_per_packet as u64;
                let samples = tone(freq, 8000.0, first, samples_per_packet);
                let dgram = packet(
                    pt,
                    n == 0,
                    n as u16,
                    first as u32,
                    ssrc,
                    &encode(pt, &samples),
                );
                let _ = sock.send_to(&dgram, to);
                n += 1;
                let next = start + Duration::from_millis(ptime_ms * n);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        ToneSender {
            stop,
            thread: Some(thread),
        }
    }
}

/// A tone being sent; stops on [`ToneSender::stop`] or drop.
pub struct ToneSender {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ToneSender {
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ToneSender {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Sends RFC 4733 key presses `digits` (event codes) as payload type `pt`,
/// each as `updates` packets of growing duration then three end packets
/// (the usual retransmission), 20 ms apart, with `gap` between presses.
pub fn send_digits(sock: &UdpSocket, to: SocketAddr, pt: u8, digits: &[u8], gap: Duration) {
    let ssrc = 0xd7f0_0001;
    let mut seq: u16 = 1000;
    let mut ts: u32 = 16_000;
    for &event in digits {
        let mut send = |marker: bool, end: bool, duration: u16| {
            let flags = if end { 0x80 } else { 0 } | 10; // volume -10 dBm0
            let mut body = vec![event, flags];
            body.extend_from_slice(&duration.to_be_bytes());
            let _ = sock.send_to(&packet(pt, marker, seq, ts, ssrc, &body), to);
            seq = seq.wrapping_add(1);
            std::thread::sleep(Duration::from_millis(20));
        };
        let updates: u16 = 5;
        for i in 1..=updates {
            send(i == 1, false, i * FRAME as u16);
        }
        for _ in 0..3 {
            send(false, true, (updates + 1) * FRAME as u16);
        }
        ts = ts.wrapping_add(u32::from(updates + 1) * FRAME as u32 + 8000);
        std::thread::sleep(gap);
    }
}

/// The tone found in received audio.
#[derive(Clone, Copy, Debug)]
pub struct Analysis {
    /// Estimated frequency, Hz (zero crossings, interpolated).
    pub freq: f64,
    /// Power of the best-fitting sine at `freq` over the residual, dB.
    pub snr_db: f64,
    /// Samples analysed.
    pub samples: usize,
}

/// Analyses the longest run of consecutive (by sequence number) G.711
/// packets in `packets`; `None` when there is less than 100 ms of it.
pub fn analyse(packets: &[Packet]) -> Option<Analysis> {
    let mut best: &[Packet] = &[];
    let mut start = 0;
    for i in 1..=packets.len() {
        let broken = i == packets.len()
            || packets[i].seq != packets[i - 1].seq.wrapping_add(1)
            || packets[i].pt != packets[start].pt;
        if broken {
            if i - start > best.len() {
                best = &packets[start..i];
            }
            start = i;
        }
    }
    let mut x: Vec<f64> = Vec::new();
    for p in best {
        x.extend(decode(p.pt, &p.payload)?.into_iter().map(f64::from));
    }
    if x.len() < 800 {
        return None;
    }
    // Upward zero crossings, linearly interpolated.
    let mut crossings = Vec::new();
    for i in 1..x.len() {
        if x[i - 1] < 0.0 && x[i] >= 0.0 {
            crossings.push((i - 1) as f64 + x[i - 1] / (x[i - 1] - x[i]));
        }
    }
    let (first, last) = (*crossings.first()?, *crossings.last()?);
    if crossings.len() < 3 {
        return None;
    }
    let freq = (crossings.len() - 1) as f64 * RATE / (last - first);
    // Least-squares sine at `freq`: projection on sin and cos.
    let w = 2.0 * std::f64::consts::PI * freq / RATE;
    let (mut s, mut c) = (0.0, 0.0);
    for (i, v) in x.iter().enumerate() {
        s += v * (w * i as f64).sin();
        c += v * (w * i as f64).cos();
    }
    let n = x.len() as f64;
    let (a, b) = (2.0 * s / n, 2.0 * c / n);
    let (mut signal, mut noise) = (0.0, 0.0);
    for (i, v) in x.iter().enumerate() {
        let fit = a * (w * i as f64).sin() + b * (w * i as f64).cos();
        signal += fit * fit;
        noise += (v - fit) * (v - fit);
    }
    Some(Analysis {
        freq,
        snr_db: 10.0 * (signal / noise.max(1e-9)).log10(),
        samples: x.len(),
    })
}
