//! The kernel's socket table: the state of a socket whose fd is already closed — an orphan in FIN_WAIT2 or a
//! TIME_WAIT entry — looked up by its address pair.
//!
//! Asked with one sock_diag netlink request for exactly that pair (the kernel looks it up in its hash: tens of
//! µs); /proc/net/tcp, which walks every bucket of the table (milliseconds on a large machine), is the fallback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use crate::model::tcp_state::TcpState;

/// The state of the socket with this local and remote address, or `None` if the kernel has no such socket.
pub fn state_of(local: SocketAddr, remote: SocketAddr) -> Option<TcpState> {
    match diag_lookup(local, remote) {
        Ok(state) => state,
        Err(_) => {
            let path = if local.is_ipv6() {
                "/proc/net/tcp6"
            } else {
                "/proc/net/tcp"
            };
            let table = std::fs::read_to_string(path).ok()?;
            find(&table, local, remote)
        }
    }
}

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;

/// An `inet_diag_req_v2` for one socket (linux/inet_diag.h), behind its netlink header.
fn diag_request(local: SocketAddr, remote: SocketAddr) -> [u8; 72] {
    let mut m = [0u8; 72];
    m[0..4].copy_from_slice(&72u32.to_ne_bytes()); // nlmsg_len
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes()); // nlmsg_type
    m[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes()); // one socket, not a dump
    let req = &mut m[16..];
    req[0] = if local.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    } as u8;
    req[1] = libc::IPPROTO_TCP as u8;
    req[4..8].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
    let id = &mut req[8..];
    id[0..2].copy_from_slice(&local.port().to_be_bytes());
    id[2..4].copy_from_slice(&remote.port().to_be_bytes());
    let put = |dst: &mut [u8], ip: IpAddr| match ip {
        IpAddr::V4(v4) => dst[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => dst[..16].copy_from_slice(&v6.octets()),
    };
    put(&mut id[4..20], local.ip());
    put(&mut id[20..36], remote.ip());
    id[40..48].copy_from_slice(&[0xff; 8]); // INET_DIAG_NOCOOKIE
    m
}

/// sock_diag sockets opened inside our private network namespaces (os/netns.rs), by the address that lives there:
/// a socket of such a namespace is only seen by a netlink socket of that namespace, and entering it later would
/// need the privileges a run has given up.
static IN_NETNS: Mutex<Vec<(IpAddr, OwnedFd)>> = Mutex::new(Vec::new());

fn diag_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the fd is owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open a sock_diag socket in the calling thread's network namespace, to ask about sockets on `ip` from then on.
pub fn answer_for(ip: IpAddr) -> std::io::Result<()> {
    let fd = diag_socket()?;
    lock_in_netns().push((ip, fd));
    Ok(())
}

/// Forget the sock_diag socket of `ip` (its namespace is being removed).
pub fn forget(ip: IpAddr) {
    lock_in_netns().retain(|(i, _)| *i != ip);
}

fn lock_in_netns() -> std::sync::MutexGuard<'static, Vec<(IpAddr, OwnedFd)>> {
    IN_NETNS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Ok(None) when the kernel says there is no such socket; Err when the question could not be asked.
fn diag_lookup(local: SocketAddr, remote: SocketAddr) -> std::io::Result<Option<TcpState>> {
    let in_netns = lock_in_netns();
    if let Some((_, fd)) = in_netns.iter().find(|(ip, _)| *ip == local.ip()) {
        return ask(fd.as_raw_fd(), local, remote);
    }
    drop(in_netns);
    let fd = diag_socket()?;
    ask(fd.as_raw_fd(), local, remote)
}

fn ask(fd: RawFd, local: SocketAddr, remote: SocketAddr) -> std::io::Result<Option<TcpState>> {
    let mut buf = [0u8; 8192];
    let n = exchange(fd, local, remote, &mut buf)?;
    parse_diag_answer(&buf[..n], remote.port())
}

/// One question about the socket `local` ⇄ `remote` on the sock_diag socket `fd`, its answer read into `buf`.
fn exchange(
    fd: RawFd,
    local: SocketAddr,
    remote: SocketAddr,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let err = std::io::Error::last_os_error;
    let req = diag_request(local, remote);
    // SAFETY: send/recv on a socket the caller holds, with buffers we own and their true lengths.
    unsafe {
        if libc::send(fd, req.as_ptr().cast(), req.len(), 0) < 0 {
            Err(err())
        } else {
            let n = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
            if n < 0 { Err(err()) } else { Ok(n as usize) }
        }
    }
}

/// The state in the kernel's answer. The kernel's lookup falls back to a listener when no connection matches;
/// such an answer (its remote port is not the one we asked for) means the connection is gone.
fn parse_diag_answer(msg: &[u8], remote_port: u16) -> std::io::Result<Option<TcpState>> {
    let bad = || std::io::Error::other("short sock_diag answer");
    let header = msg.get(..16).ok_or_else(bad)?;
    match u16::from_ne_bytes([header[4], header[5]]) {
        SOCK_DIAG_BY_FAMILY => {
            // inet_diag_msg: family, state, timer, retrans, then the id: sport, dport
            let dport = msg.get(22..24).ok_or_else(bad)?;
            if u16::from_be_bytes([dport[0], dport[1]]) != remote_port {
                return Ok(None);
            }
            Ok(TcpState::from_linux(msg[17]))
        }
        NLMSG_ERROR => {
            let code = i32::from_ne_bytes(
                msg.get(16..20)
                    .ok_or_else(bad)?
                    .try_into()
                    .expect("4 bytes"),
            );
            if code == -libc::ENOENT {
                Ok(None)
            } else {
                Err(std::io::Error::from_raw_os_error(-code))
            }
        }
        other => Err(std::io::Error::other(format!(
            "unexpected netlink message type {other}"
        ))),
    }
}

/// A socket as the socket table shows it: its state, the inode its file descriptors point at (0 while no process
/// holds it: a connection not yet accepted, an orphan), and its owner's uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiagSocket {
    pub state: Option<TcpState>,
    pub inode: u64,
    pub uid: u32,
    /// The kernel answered with the listening socket of `local`'s port: the connection itself is not (or no
    /// longer) in the table.
    pub listener: bool,
}

/// The socket of this local and remote address (or, when the connection is not in the table, the listener of the
/// local port, marked so); `None` when the kernel has neither; `Err` when the question could not be asked.
pub fn socket_of(local: SocketAddr, remote: SocketAddr) -> std::io::Result<Option<DiagSocket>> {
    Diag::open()?.socket_of(local, remote)
}

/// One sock_diag netlink socket, for many questions in a row (`watch` asks thousands a second).
pub struct Diag(std::os::fd::OwnedFd);

impl Diag {
    pub fn open() -> std::io::Result<Diag> {
        use std::os::fd::FromRawFd;
        // SAFETY: a new socket, owned by the OwnedFd from here on.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Diag(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
    }

    /// See [`socket_of`].
    pub fn socket_of(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> std::io::Result<Option<DiagSocket>> {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 8192];
        let n = exchange(self.0.as_raw_fd(), local, remote, &mut buf)?;
        parse_diag_socket(&buf[..n], remote.port())
    }
}

/// Every socket of one family in `states` (a mask of `1 << linux state`), asked with one netlink dump: a batch of
/// lookups costs one walk of the table instead of a question each.
pub fn dump(
    diag: &Diag,
    ipv6: bool,
    states: u32,
) -> std::io::Result<Vec<(SocketAddr, SocketAddr, DiagSocket)>> {
    use std::os::fd::AsRawFd;
    let fd = diag.0.as_raw_fd();
    let mut req = [0u8; 72];
    req[0..4].copy_from_slice(&72u32.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    req[16] = if ipv6 { libc::AF_INET6 } else { libc::AF_INET } as u8;
    req[17] = libc::IPPROTO_TCP as u8;
    req[20..24].copy_from_slice(&states.to_ne_bytes());
    // SAFETY: send on our socket with a buffer we own and its true length.
    if unsafe { libc::send(fd, req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: recv into a buffer we own, with its true length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if parse_dump(&buf[..n as usize], &mut out)? {
            return Ok(out);
        }
    }
}

/// The sockets in one datagram of a dump's answer, added to `out`; true at its end (NLMSG_DONE).
fn parse_dump(
    mut msg: &[u8],
    out: &mut Vec<(SocketAddr, SocketAddr, DiagSocket)>,
) -> std::io::Result<bool> {
    const NLMSG_DONE: u16 = 3;
    let bad = || std::io::Error::other("short sock_diag dump");
    while msg.len() >= 16 {
        let len = u32::from_ne_bytes(msg[0..4].try_into().expect("4 bytes")) as usize;
        let one = msg.get(..len).filter(|_| len >= 16).ok_or_else(bad)?;
        match u16::from_ne_bytes([one[4], one[5]]) {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => return parse_diag_answer(one, 0).map(|_| true),
            SOCK_DIAG_BY_FAMILY if one.len() >= 88 => {
                let port = |at: usize| u16::from_be_bytes([one[at], one[at + 1]]);
                let addr = |at: usize| -> IpAddr {
                    if one[16] == libc::AF_INET6 as u8 {
                        let b: [u8; 16] = one[at..at + 16].try_into().expect("16 bytes");
                        let v6 = Ipv6Addr::from(b);
                        // a dual-stack socket's IPv4 peer, as the packets show it
                        v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
                    } else {
                        let b: [u8; 4] = one[at..at + 4].try_into().expect("4 bytes");
                        IpAddr::V4(Ipv4Addr::from(b))
                    }
                };
                let word =
                    |at: usize| u32::from_ne_bytes(one[at..at + 4].try_into().expect("4 bytes"));
                let state = TcpState::from_linux(one[17]);
                out.push((
                    SocketAddr::new(addr(24), port(20)),
                    SocketAddr::new(addr(40), port(22)),
                    DiagSocket {
                        state,
                        inode: u64::from(word(84)),
                        uid: word(80),
                        listener: state == Some(TcpState::Listen),
                    },
                ));
            }
            _ => {}
        }
        msg = &msg[((len + 3) & !3).min(msg.len())..];
    }
    Ok(false)
}

fn parse_diag_socket(msg: &[u8], remote_port: u16) -> std::io::Result<Option<DiagSocket>> {
    let bad = || std::io::Error::other("short sock_diag answer");
    let header = msg.get(..16).ok_or_else(bad)?;
    if u16::from_ne_bytes([header[4], header[5]]) != SOCK_DIAG_BY_FAMILY {
        return parse_diag_answer(msg, remote_port).map(|_| None);
    }
    let word = |at: usize| -> std::io::Result<u32> {
        Ok(u32::from_ne_bytes(
            msg.get(at..at + 4)
                .ok_or_else(bad)?
                .try_into()
                .expect("4 bytes"),
        ))
    };
    let dport = msg.get(22..24).ok_or_else(bad)?;
    Ok(Some(DiagSocket {
        state: TcpState::from_linux(msg[17]),
        inode: u64::from(word(84)?),
        uid: word(80)?,
        listener: u16::from_be_bytes([dport[0], dport[1]]) != remote_port,
    }))
}

fn find(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<TcpState> {
    table.lines().skip(1).find_map(|line| {
        let mut f = line.split_whitespace();
        let _slot = f.next()?;
        let l = parse_addr(f.next()?)?;
        let r = parse_addr(f.next()?)?;
        let st = u8::from_str_radix(f.next()?, 16).ok()?;
        (l == local && r == remote)
            .then(|| TcpState::from_linux(st))
            .flatten()
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6); each 32-bit group is printed in host byte order.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let group = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(group(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&group(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    #[test]
    fn diag_request_names_the_pair() {
        let m = diag_request(
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:8080".parse().unwrap(),
        );
        assert_eq!(&m[0..4], &72u32.to_le_bytes());
        assert_eq!(m[16], libc::AF_INET as u8);
        assert_eq!(&m[24..26], &40000u16.to_be_bytes());
        assert_eq!(&m[26..28], &8080u16.to_be_bytes());
        assert_eq!(&m[28..32], &[127, 0, 0, 1]);
        assert_eq!(&m[44..48], &[127, 0, 0, 1]);
    }

    #[test]
    fn diag_answers_parse() {
        let mut found = vec![0u8; 88];
        found[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_le_bytes());
        found[17] = 6;
        found[22..24].copy_from_slice(&8080u16.to_be_bytes());
        assert_eq!(
            parse_diag_answer(&found, 8080).unwrap(),
            Some(TcpState::TimeWait)
        );
        // the listener the kernel falls back to is not the connection we asked for
        found[17] = 10;
        found[22..24].copy_from_slice(&[0, 0]);
        assert_eq!(parse_diag_answer(&found, 8080).unwrap(), None);
        let mut gone = vec![0u8; 36];
        gone[4..6].copy_from_slice(&NLMSG_ERROR.to_le_bytes());
        gone[16..20].copy_from_slice(&(-libc::ENOENT).to_le_bytes());
        assert_eq!(parse_diag_answer(&gone, 1).unwrap(), None);
        assert!(parse_diag_answer(&gone[..10], 1).is_err());
    }

    #[test]
    fn diag_finds_a_real_listener_and_its_connection() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        let (la, lb) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert_eq!(diag_lookup(la, lb).unwrap(), Some(TcpState::Established));
        drop(b);
        // B's close sent FIN; B's orphan waits in FIN_WAIT2 (or FIN_WAIT1 until the ACK is in)
        let b_state = diag_lookup(lb, la).unwrap();
        assert!(
            matches!(b_state, Some(TcpState::FinWait1 | TcpState::FinWait2)),
            "{b_state:?}"
        );
        // for a pair with no connection on the listener's port the kernel answers with the listener: no socket
        assert_eq!(
            diag_lookup(l.local_addr().unwrap(), "127.0.0.1:1".parse().unwrap()).unwrap(),
            None
        );
        assert_eq!(
            diag_lookup(la, "127.0.0.1:1".parse().unwrap()).unwrap(),
            None
        );
    }

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 0100007F:9C40 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
   1: 0100007F:9C40 0100007F:1F90 05 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000
";

    #[test]
    fn finds_states_by_address_pair() {
        let b: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let a: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert_eq!(find(TABLE, b, a), Some(TcpState::TimeWait));
        assert_eq!(find(TABLE, a, b), Some(TcpState::FinWait2));
        assert_eq!(find(TABLE, a, "127.0.0.1:1".parse().unwrap()), None);
    }

    #[test]
    fn parses_ipv6_groups() {
        assert_eq!(
            parse_addr("00000000000000000000000001000000:0050"),
            Some("[::1]:80".parse().unwrap())
        );
    }
}
