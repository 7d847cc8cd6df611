//! The cheapest TCP connections on loopback, as many as the machine makes: a listener that accepts and closes, and
//! THREADS loops of connect + close, for SECONDS. For `bench/watch.sh`, which runs it alone and under `watch` and
//! compares: it prints one line of `key=value` counts (connects made, accepted, errors by errno, seconds).
//!
//! `cargo run --release --example connload -- serve` prints the listener's port and serves until killed;
//! `cargo run --release --example connload -- connect PORT THREADS SECONDS [SOURCES]` runs the connect loops
//! against it. Separate processes, so that a watch names a different process on each end.
//!
//! Ephemeral ports: 28k on Linux by default, and each closed connection's 4-tuple sits in TIME_WAIT for 60 s. On
//! loopback `tcp_tw_reuse` (2, the default) lets connect() take a TIME_WAIT port again; to spread the 4-tuples the
//! loops also bind their source to 127.0.0.1 … 127.0.0.SOURCES (default 8; IP_BIND_ADDRESS_NO_PORT so the port is
//! still chosen at connect).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(),
        Some("connect") if args.len() >= 4 => {
            let parse = |i: usize| -> u64 {
                args.get(i).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
                    eprintln!("connload: `{}` is not a number", args[i]);
                    std::process::exit(2)
                })
            };
            let sources = if args.len() > 4 { parse(4) } else { 8 };
            connect(parse(1) as u16, parse(2), parse(3), sources.clamp(1, 250));
        }
        _ => {
            eprintln!("usage: connload serve | connload connect PORT THREADS SECONDS [SOURCES]");
            std::process::exit(2)
        }
    }
}

/// Accept and close, forever; the port on standard output first. A backlog as long as the kernel allows, so a
/// burst of SYNs is not dropped (a dropped SYN costs its connect a 1 s retransmission).
fn serve() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    // SAFETY: listen(2) again on our own listening socket only changes its backlog.
    unsafe { libc::listen(l.as_raw_fd(), 65_535) };
    println!("{}", l.local_addr().expect("local address").port());
    std::io::stdout().flush().ok();
    let accepted = Arc::new(AtomicU64::new(0));
    let a = Arc::clone(&accepted);
    // the count on SIGTERM's way out is not needed: the connect side counts; a second thread keeps up with bursts
    let l2 = l.try_clone().expect("listener clone");
    std::thread::spawn(move || accept_loop(&l2, &a));
    accept_loop(&l, &accepted);
}

fn accept_loop(l: &TcpListener, accepted: &AtomicU64) {
    loop {
        if let Ok((s, _)) = l.accept() {
            accepted.fetch_add(1, Ordering::Relaxed);
            drop(s);
        }
    }
}

fn connect(port: u16, threads: u64, seconds: u64, sources: u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(BTreeMap::<i32, u64>::new()));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (stop, made, errors) = (Arc::clone(&stop), Arc::clone(&made), Arc::clone(&errors));
            std::thread::spawn(move || {
                let mut i = t;
                let mut mine = BTreeMap::new();
                while !stop.load(Ordering::Relaxed) {
                    let src = [127, 0, 0, 1 + (i % sources) as u8];
                    i += threads;
                    match one(src, port) {
                        Ok(()) => {
                            made.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(errno) => *mine.entry(errno).or_insert(0) += 1,
                    }
                }
                let mut all = errors.lock().expect("errors");
                for (e, n) in mine {
                    *all.entry(e).or_insert(0) += n;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().ok();
    }
    let took = start.elapsed().as_secs_f64();
    let errors = errors.lock().expect("errors");
    let errs: Vec<String> = errors
        .iter()
        .map(|(e, n)| format!("{}:{n}", errno_name(*e)))
        .collect();
    println!(
        "connects={} seconds={took:.3} errors={} error_kinds={}",
        made.load(Ordering::Relaxed),
        errors.values().sum::<u64>(),
        if errs.is_empty() {
            "-".into()
        } else {
            errs.join(",")
        }
    );
}

/// One connection from `src` (port chosen at connect): connect, wait for the server's FIN, close.
fn one(src: [u8; 4], port: u16) -> Result<(), i32> {
    // SAFETY: plain socket calls on a descriptor this function owns (closed by the TcpStream made from it).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(*libc::__errno_location());
        }
        let mut s = std::net::TcpStream::from_raw_fd(fd);
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            4,
        );
        let bind = sockaddr(SocketAddr::from((src, 0)));
        if libc::bind(fd, (&bind as *const libc::sockaddr_in).cast(), 16) != 0 {
            return Err(*libc::__errno_location());
        }
        let to = sockaddr(SocketAddr::from(([127, 0, 0, 1], port)));
        if libc::connect(fd, (&to as *const libc::sockaddr_in).cast(), 16) != 0 {
            return Err(*libc::__errno_location());
        }
        // the server closes first (its end takes the TIME_WAIT); our close then ends it cleanly
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
        Ok(())
    }
}

fn sockaddr(a: SocketAddr) -> libc::sockaddr_in {
    let SocketAddr::V4(a) = a else {
        unreachable!("IPv4 only")
    };
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

fn errno_name(e: i32) -> String {
    match e {
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL".into(),
        libc::ECONNREFUSED => "ECONNREFUSED".into(),
        libc::ECONNRESET => "ECONNRESET".into(),
        libc::ETIMEDOUT => "ETIMEDOUT".into(),
        libc::EMFILE => "EMFILE".into(),
        e => format!("errno{e}"),
    }
}
