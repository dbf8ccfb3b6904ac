//! Test peers (real UDP sockets on loopback) and signal measures.

#![allow(dead_code)]

use std::f64::consts::PI;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;
use trunkline_media::rtp::{RtpHeader, RtpPacket};
use trunkline_relay::MediaEvent;

/// An RTP packet as a peer received it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) from: SocketAddr,
    pub(crate) payload_type: u8,
    pub(crate) sequence: u16,
    pub(crate) timestamp: u32,
    pub(crate) ssrc: u32,
    pub(crate) marker: bool,
    pub(crate) payload: Vec<u8>,
}

/// A phone, Five9 or an agent: one UDP socket sending and receiving RTP.
pub(crate) struct Peer {
    pub(crate) socket: UdpSocket,
    pub(crate) ssrc: u32,
    pub(crate) sequence: u16,
    pub(crate) timestamp: u32,
}

impl Peer {
    pub(crate) async fn bind(ip: &str) -> Peer {
        Peer {
            socket: UdpSocket::bind((ip, 0)).await.unwrap(),
            ssrc: 0x1000,
            sequence: 100,
            timestamp: 8000,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// Sends one packet; sequence +1, timestamp + payload length.
    pub(crate) async fn send(&mut self, to: SocketAddr, pt: u8, payload: &[u8]) {
        self.send_at(to, pt, self.timestamp, payload).await;
        self.timestamp = self.timestamp.wrapping_add(payload.len() as u32);
    }

    /// Sends one packet with an explicit timestamp (DTMF shares one).
    pub(crate) async fn send_at(&mut self, to: SocketAddr, pt: u8, ts: u32, payload: &[u8]) {
        let mut buf = [0u8; 1500];
        let header = RtpHeader {
            marker: false,
            payload_type: pt,
            sequence: self.sequence,
            timestamp: ts,
            ssrc: self.ssrc,
        };
        let len = header.write_packet(payload, &mut buf).unwrap();
        self.socket.send_to(&buf[..len], to).await.unwrap();
        self.sequence = self.sequence.wrapping_add(1);
    }

    /// The next packet, or `None` after `wait`.
    pub(crate) async fn recv(&self, wait: Duration) -> Option<Received> {
        let mut buf = [0u8; 1500];
        let (len, from) = timeout(wait, self.socket.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        let p = RtpPacket::parse(&buf[..len]).ok()?;
        Some(Received {
            from,
            payload_type: p.payload_type(),
            sequence: p.sequence(),
            timestamp: p.timestamp(),
            ssrc: p.ssrc(),
            marker: p.marker(),
            payload: p.payload().to_vec(),
        })
    }

    /// Up to `n` packets, each awaited at most `wait`.
    pub(crate) async fn recv_n(&self, n: usize, wait: Duration) -> Vec<Received> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            match self.recv(wait).await {
                Some(p) => out.push(p),
                None => break,
            }
        }
        out
    }
}

/// Events that arrive within `wait`.
pub(crate) async fn events_within(
    rx: &mut mpsc::Receiver<MediaEvent>,
    wait: Duration,
) -> Vec<MediaEvent> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(e);
    }
    out
}

/// `len` samples of a sine at `freq` Hz (8 kHz), peak `amplitude`.
pub(crate) fn sine(freq: f64, amplitude: f64, len: usize) -> Vec<i16> {
    (0..len)
        .map(|n| (amplitude * (2.0 * PI * freq * n as f64 / 8000.0).sin()).round() as i16)
        .collect()
}

/// Signal-to-noise ratio of `output` against `reference`, in dB.
pub(crate) fn snr_db(reference: &[i16], output: &[i16]) -> f64 {
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for (&r, &o) in reference.iter().zip(output) {
        signal += f64::from(r).powi(2);
        noise += (f64::from(r) - f64::from(o)).powi(2);
    }
    10.0 * (signal / noise.max(1e-9)).log10()
}

/// The frequency (10 Hz grid) holding the most power (Goertzel).
pub(crate) fn dominant_frequency(samples: &[i16]) -> f64 {
    let power = |freq: f64| {
        let coeff = 2.0 * (2.0 * PI * freq / 8000.0).cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in samples {
            let s0 = f64::from(x) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        s1 * s1 + s2 * s2 - coeff * s1 * s2
    };
    (1..400)
        .map(|i| f64::from(i) * 10.0)
        .max_by(|a, b| power(*a).total_cmp(&power(*b)))
        .unwrap_or(0.0)
}
