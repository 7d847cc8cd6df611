//! Connections' frames without the connections: RATE a second for SECONDS, each the six frames of the cheapest
//! TCP connection (SYN, SYN-ACK, ACK, the server's FIN, the client's FIN, the last ACK), written straight onto a
//! device through a packet socket. For `bench/watch.sh frames`, which measures how many connections a second
//! `watch` itself keeps up with: a real connection costs this 2-CPU machine's TCP stack about 80 µs of CPU, so
//! real loads stop near 20,000 a second whatever watches them; a written frame costs about a microsecond.
//!
//! `cargo run --release --example frameload -- PORT RATE SECONDS [DEVICE]` (as root; DEVICE defaults to `lo`;
//! RATE 0: as many as it can write for SECONDS).
//! Clients are 127.0.0.2 … 127.0.0.251 with ports 1024 … 65535 in turn, so no 4-tuple comes back within a run of
//! fewer than 16 million connections; the server is 127.0.0.1:PORT. On `lo` the frames also reach this machine's
//! IP stack, which would answer each SYN with a RST: the bench drops them at `lo`'s ingress (nftables), after
//! the capture has seen them. Prints one line: `connections=N frames=F seconds=S`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Connections written per sendmmsg (and per pacing step).
const BATCH: usize = 32;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
            eprintln!("usage: frameload PORT RATE SECONDS [DEVICE]");
            std::process::exit(2)
        })
    };
    let (port, rate, seconds) = (num(0) as u16, num(1), num(2));
    let device = args.get(3).map_or("lo", String::as_str);
    let fd = packet_socket(device).unwrap_or_else(|e| {
        eprintln!("frameload: cannot write frames on {device}: {e} (run as root)");
        std::process::exit(1)
    });
    let start = Instant::now();
    let (total, end) = match rate {
        0 => (u64::MAX, start + Duration::from_secs(seconds)),
        r => (r * seconds, start + Duration::from_secs(seconds * 1000)),
    };
    let (mut sent, mut frames) = (0u64, 0u64);
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH * 6);
    while sent < total && Instant::now() < end {
        // pace: connection `sent` is due at sent / rate seconds
        if rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        batch.clear();
        let n = (BATCH as u64).min(total - sent);
        for i in sent..sent + n {
            batch.extend(connection(i, port));
        }
        frames += send_all(fd, &batch).unwrap_or_else(|e| {
            eprintln!("frameload: writing frames failed: {e}");
            std::process::exit(1)
        });
        sent += n;
    }
    println!(
        "connections={sent} frames={frames} seconds={:.3}",
        start.elapsed().as_secs_f64()
    );
}

/// The six frames of connection `i`: its client is the `i`th of 250 addresses × 64,512 ports.
fn connection(i: u64, port: u16) -> [Vec<u8>; 6] {
    let client = Ipv4Addr::new(127, 0, 0, 2 + (i % 250) as u8).octets();
    let client_port = 1024 + ((i / 250) % 64_512) as u16;
    let server = Ipv4Addr::new(127, 0, 0, 1).octets();
    let (c, s) = ((i as u32).wrapping_mul(2_654_435_761), 1_000_000u32);
    let frame = |from_client: bool, seq: u32, ack: u32, flags: &str| {
        let (src, dst, sport, dport) = if from_client {
            (client, server, client_port, port)
        } else {
            (server, client, port, client_port)
        };
        let mut b = etherparse::PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4(src, dst, 64)
            .tcp(sport, dport, seq, 65_535);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('A') {
            b = b.ack(ack);
        }
        if flags.contains('F') {
            b = b.fin();
        }
        let mut out = Vec::with_capacity(b.size(0));
        b.write(&mut out, &[]).expect("a frame fits a Vec");
        out
    };
    [
        frame(true, c, 0, "S"),
        frame(false, s, c + 1, "SA"),
        frame(true, c + 1, s + 1, "A"),
        frame(false, s + 1, c + 1, "FA"),
        frame(true, c + 1, s + 2, "FA"),
        frame(false, s + 2, c + 2, "A"),
    ]
}

/// A raw packet socket bound to `device`.
fn packet_socket(device: &str) -> std::io::Result<i32> {
    let name = std::ffi::CString::new(device).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: plain system calls on values we own; the address is a zeroed sockaddr_ll with its fields set.
    unsafe {
        let ifindex = libc::if_nametoindex(name.as_ptr());
        if ifindex == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        if libc::bind(fd, (&addr as *const libc::sockaddr_ll).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(fd)
    }
}

/// Write every frame (sendmmsg, again for those a call did not take); how many were written.
fn send_all(fd: i32, frames: &[Vec<u8>]) -> std::io::Result<u64> {
    let mut iovs: Vec<libc::iovec> = frames
        .iter()
        .map(|f| libc::iovec {
            iov_base: f.as_ptr() as *mut libc::c_void,
            iov_len: f.len(),
        })
        .collect();
    // SAFETY: zeroed msghdrs are valid (no name, no control); each points at one iovec that outlives the call.
    let mut msgs: Vec<libc::mmsghdr> = iovs
        .iter_mut()
        .map(|iov| {
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    let mut done = 0;
    while done < msgs.len() {
        let rest = &mut msgs[done..];
        // SAFETY: `rest` is a live slice of initialised mmsghdrs.
        let n = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as u32, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOBUFS) {
                std::thread::sleep(Duration::from_micros(50));
                continue;
            }
            return Err(e);
        }
        done += n as usize;
    }
    Ok(done as u64)
}
