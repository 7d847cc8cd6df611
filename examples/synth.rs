//! Write a large synthetic capture for benchmarks: a mix of clean closes, resets from each side, half-closes and
//! never-closed connections, interleaved the way a busy server's traffic is.
//!
//! `cargo run --release --example synth -- --connections 1000000 /tmp/synth-1m.pcap`
//! (about 10 packets per connection; 1M connections ≈ 10M packets ≈ 1 GB). Deterministic: same N, same bytes.

use std::fs::File;

use tcp_close_watch::capfile::Endian;
use tcp_close_watch::capfile::write::PcapWriter;

/// Bytes buffered before they are written to the file.
const FLUSH_AT: usize = 8 << 20;

/// Connections in flight at once: their packets interleave.
const CONCURRENT: usize = 2000;

#[derive(Clone, Copy)]
enum Kind {
    Clean,
    ClientReset,
    ServerReset,
    HalfClose,
    NeverClosed,
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;

/// (from client?, flags, payload length) steps of each kind.
fn script(kind: Kind) -> &'static [(bool, u8, u16)] {
    const HANDSHAKE_AND_DATA: [(bool, u8, u16); 6] = [
        (true, SYN, 0),
        (false, SYN | ACK, 0),
        (true, ACK, 0),
        (true, PSH | ACK, 100),
        (false, ACK, 0),
        (false, PSH | ACK, 300),
    ];
    match kind {
        Kind::Clean => &[
            HANDSHAKE_AND_DATA[0],
            HANDSHAKE_AND_DATA[1],
            HANDSHAKE_AND_DATA[2],
            HANDSHAKE_AND_DATA[3],
            HANDSHAKE_AND_DATA[4],
            HANDSHAKE_AND_DATA[5],
            (true, FIN | ACK, 0),
            (false, FIN | ACK, 0),
            (true, ACK, 0),
            (false, ACK, 0),
        ],
        Kind::ClientReset => &[
            HANDSHAKE_AND_DATA[0],
            HANDSHAKE_AND_DATA[1],
            HANDSHAKE_AND_DATA[2],
            HANDSHAKE_AND_DATA[3],
            HANDSHAKE_AND_DATA[4],
            HANDSHAKE_AND_DATA[5],
            (true, ACK, 0),
            (true, PSH | ACK, 90),
            (false, ACK, 0),
            (true, RST | ACK, 0),
        ],
        Kind::ServerReset => &[
            HANDSHAKE_AND_DATA[0],
            HANDSHAKE_AND_DATA[1],
            HANDSHAKE_AND_DATA[2],
            HANDSHAKE_AND_DATA[3],
            HANDSHAKE_AND_DATA[4],
            HANDSHAKE_AND_DATA[5],
            (true, PSH | ACK, 100),
            (false, ACK, 0),
            (false, PSH | ACK, 300),
            (false, RST | ACK, 0),
        ],
        Kind::HalfClose => &[
            HANDSHAKE_AND_DATA[0],
            HANDSHAKE_AND_DATA[1],
            HANDSHAKE_AND_DATA[2],
            HANDSHAKE_AND_DATA[3],
            (true, FIN | ACK, 0),
            (false, ACK, 0),
            (false, PSH | ACK, 400),
            (true, ACK, 0),
            (false, PSH | ACK, 400),
            (true, ACK, 0),
        ],
        Kind::NeverClosed => &[
            HANDSHAKE_AND_DATA[0],
            HANDSHAKE_AND_DATA[1],
            HANDSHAKE_AND_DATA[2],
            HANDSHAKE_AND_DATA[3],
            HANDSHAKE_AND_DATA[4],
            HANDSHAKE_AND_DATA[5],
            (true, ACK, 0),
            (true, PSH | ACK, 40),
            (false, ACK, 0),
        ],
    }
}

struct Conn {
    kind: Kind,
    step: usize,
    client: [u8; 4],
    cport: u16,
    sport: u16,
    /// Next sequence number of client and server.
    seq: [u32; 2],
}

fn kind_of(i: u64) -> Kind {
    // 50% clean, 15% client reset, 15% server reset, 10% half-close, 10% never closed.
    match i % 20 {
        0..=9 => Kind::Clean,
        10..=12 => Kind::ClientReset,
        13..=15 => Kind::ServerReset,
        16 | 17 => Kind::HalfClose,
        _ => Kind::NeverClosed,
    }
}

fn new_conn(i: u64) -> Conn {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Conn {
        kind: kind_of(i),
        step: 0,
        // Each client address serves 60000 ports, so 4-tuples never repeat.
        client: [
            10,
            (i / 60000 / 256 % 256) as u8,
            (i / 60000 % 256) as u8,
            1 + (i % 200) as u8,
        ],
        cport: 1024 + (i % 60000) as u16,
        sport: if i.is_multiple_of(3) { 443 } else { 80 },
        seq: [(h >> 32) as u32, h as u32],
    }
}

fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in header.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut n: u64 = 100_000;
    let mut out = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--connections" => {
                n = args
                    .get(i + 1)
                    .and_then(|s| s.parse().ok())
                    .expect("--connections needs a number");
                i += 2;
            }
            other => {
                out = Some(other.to_string());
                i += 1;
            }
        }
    }
    let Some(out) = out else {
        eprintln!("usage: synth [--connections N] OUT.pcap");
        std::process::exit(1);
    };
    let mut file = File::create(&out)?;
    // µs, little-endian, Ethernet, snaplen 65535; handed to the file in blocks of 8 MiB
    let mut w = PcapWriter::with_capacity(FLUSH_AT + (64 << 10), Endian::Little, false, 65535, 1);

    let server = [192u8, 168, 0, 1];
    let mut live: Vec<Conn> = Vec::with_capacity(CONCURRENT);
    let mut started = 0u64;
    let mut t_us: u64 = 1_700_000_000_000_000;
    let mut packets = 0u64;
    let payload = [b'x'; 1500];
    let mut frame = Vec::with_capacity(2048);
    let mut slot = 0usize;
    loop {
        while live.len() < CONCURRENT && started < n {
            live.push(new_conn(started));
            started += 1;
        }
        if live.is_empty() {
            break;
        }
        slot = (slot + 7) % live.len();
        let c = &mut live[slot];
        let (from_client, flags, len) = script(c.kind)[c.step];
        let (me, peer) = if from_client { (0, 1) } else { (1, 0) };
        let (src, dst, sp, dp) = if from_client {
            (c.client, server, c.cport, c.sport)
        } else {
            (server, c.client, c.sport, c.cport)
        };
        let ack_no = if flags & ACK != 0 { c.seq[peer] } else { 0 };
        frame.clear();
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let total = 40 + len;
        let ip_start = frame.len();
        frame.extend_from_slice(&[0x45, 0]);
        frame.extend_from_slice(&total.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        frame.extend_from_slice(&src);
        frame.extend_from_slice(&dst);
        let sum = checksum(&frame[ip_start..ip_start + 20]);
        frame[ip_start + 10..ip_start + 12].copy_from_slice(&sum.to_be_bytes());
        frame.extend_from_slice(&sp.to_be_bytes());
        frame.extend_from_slice(&dp.to_be_bytes());
        frame.extend_from_slice(&c.seq[me].to_be_bytes());
        frame.extend_from_slice(&ack_no.to_be_bytes());
        frame.extend_from_slice(&[0x50, flags]);
        frame.extend_from_slice(&64240u16.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(&payload[..usize::from(len)]);
        let advance = u32::from(len) + u32::from(flags & SYN != 0) + u32::from(flags & FIN != 0);
        c.seq[me] = c.seq[me].wrapping_add(advance);

        t_us += 3;
        w.record((t_us * 1000) as i64, &frame, frame.len() as u32);
        if w.len() >= FLUSH_AT {
            w.write_to(&mut file)?;
        }
        packets += 1;

        c.step += 1;
        if c.step == script(c.kind).len() {
            live.swap_remove(slot);
        }
    }
    w.write_to(&mut file)?;
    eprintln!("wrote {out}: {n} connections, {packets} packets");
    Ok(())
}
