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
        diag_socket().map(Diag)
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

/// Questions sent in one datagram at most: their answers must all fit in the socket's receive buffer at once (the
/// kernel answers each while we are still in send(2), and drops an answer that does not fit).
const QUESTIONS_AT_ONCE: usize = 64;
/// Room for one answer (an `inet_diag_msg` and a few attributes; a longer one is cut, and we read only its start).
const ANSWER_ROOM: usize = 1024;

impl Diag {
    /// [`Diag::socket_of`] for many pairs, asked [`QUESTIONS_AT_ONCE`] to a datagram and their answers read with
    /// one recvmmsg(2): a question is a hash lookup in the kernel, and two system calls per question cost more than
    /// the lookup. Answers come back in order, each with the sequence number of its question; a question whose
    /// answer did not come back gets an error (the caller may ask it alone).
    pub fn sockets_of(
        &self,
        pairs: &[(SocketAddr, SocketAddr)],
    ) -> Vec<std::io::Result<Option<DiagSocket>>> {
        let mut out = Vec::with_capacity(pairs.len());
        let mut req = Vec::with_capacity(72 * QUESTIONS_AT_ONCE);
        let mut bufs = vec![0u8; ANSWER_ROOM * QUESTIONS_AT_ONCE];
        for chunk in pairs.chunks(QUESTIONS_AT_ONCE) {
            req.clear();
            for (i, (local, remote)) in chunk.iter().enumerate() {
                let mut m = diag_request(*local, *remote);
                m[8..12].copy_from_slice(&(i as u32 + 1).to_ne_bytes()); // nlmsg_seq
                req.extend_from_slice(&m);
            }
            let mut answers: Vec<Option<std::io::Result<Option<DiagSocket>>>> =
                (0..chunk.len()).map(|_| None).collect();
            if let Err(e) = self.exchange_many(&req, &mut bufs, chunk, &mut answers) {
                let kind = e.kind();
                for a in answers.iter_mut().filter(|a| a.is_none()) {
                    *a = Some(Err(std::io::Error::new(kind, e.to_string())));
                }
            }
            out.extend(
                answers.into_iter().map(|a| {
                    a.unwrap_or_else(|| Err(std::io::Error::other("no sock_diag answer")))
                }),
            );
        }
        out
    }

    /// Send the questions in `req` (one datagram), read every answer waiting into `answers` by sequence number.
    fn exchange_many(
        &self,
        req: &[u8],
        bufs: &mut [u8],
        chunk: &[(SocketAddr, SocketAddr)],
        answers: &mut [Option<std::io::Result<Option<DiagSocket>>>],
    ) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = self.0.as_raw_fd();
        // an answer left from an earlier question (read too late) would be taken for one of these
        // SAFETY: recv into a buffer we own, with its true length, without waiting.
        while unsafe { libc::recv(fd, bufs.as_mut_ptr().cast(), bufs.len(), libc::MSG_DONTWAIT) }
            > 0
        {}
        // SAFETY: send on our socket with a buffer we own and its true length.
        if unsafe { libc::send(fd, req.as_ptr().cast(), req.len(), 0) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut got = 0;
        while got < chunk.len() {
            let mut iov: Vec<libc::iovec> = bufs
                .chunks_mut(ANSWER_ROOM)
                .map(|b| libc::iovec {
                    iov_base: b.as_mut_ptr().cast(),
                    iov_len: b.len(),
                })
                .collect();
            // SAFETY: an all-zero mmsghdr is valid; each points at one iovec of ours.
            let mut msgs: Vec<libc::mmsghdr> = iov
                .iter_mut()
                .map(|v| {
                    let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    m.msg_hdr.msg_iov = v;
                    m.msg_hdr.msg_iovlen = 1;
                    m
                })
                .collect();
            // every answer was queued during send(2): what is not there now will not come
            // SAFETY: recvmmsg into the buffers above, which outlive the call.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    msgs.as_mut_ptr(),
                    (chunk.len() - got) as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                return if e.kind() == std::io::ErrorKind::WouldBlock {
                    Ok(())
                } else {
                    Err(e)
                };
            }
            if n == 0 {
                return Ok(());
            }
            for (m, b) in msgs.iter().zip(bufs.chunks(ANSWER_ROOM)).take(n as usize) {
                let msg = &b[..(m.msg_len as usize).min(ANSWER_ROOM)];
                let Some(seq) = msg
                    .get(8..12)
                    .map(|s| u32::from_ne_bytes(s.try_into().expect("4 bytes")))
                else {
                    continue;
                };
                let Some(i) = (seq as usize).checked_sub(1).filter(|i| *i < chunk.len()) else {
                    continue;
                };
                answers[i] = Some(parse_diag_socket(msg, chunk[i].1.port()));
            }
            got += n as usize;
        }
        Ok(())
    }
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
        let (a, b) = crate::testing::accepted(&l);
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

    /// Many questions in one datagram get the answers one question each gets, in order, more than fit at once.
    #[test]
    fn questions_asked_together_get_the_answers_asked_alone() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut held = Vec::new();
        let mut pairs = Vec::new();
        for _ in 0..(QUESTIONS_AT_ONCE + 10) {
            let (a, b) = crate::testing::accepted(&l);
            let (la, lb) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            pairs.push((la, lb));
            pairs.push((lb, la));
            held.push((a, b));
        }
        // no such connection: nothing (a client port), or the listener of a server port (marked so)
        let nowhere: SocketAddr = "127.0.0.1:1".parse().unwrap();
        pairs.insert(7, (held[0].0.local_addr().unwrap(), nowhere));
        pairs.insert(9, (l.local_addr().unwrap(), nowhere));
        let d = Diag::open().unwrap();
        let together = d.sockets_of(&pairs);
        assert_eq!(together.len(), pairs.len());
        for ((local, remote), got) in pairs.iter().zip(together) {
            let alone = d.socket_of(*local, *remote).unwrap();
            assert_eq!(got.unwrap(), alone, "{local} -> {remote}");
        }
        let s = d.sockets_of(&pairs[9..10]).remove(0).unwrap().unwrap();
        assert!(s.listener);
        assert_eq!(d.sockets_of(&pairs[7..8]).remove(0).unwrap(), None);
        assert!(d.sockets_of(&pairs[..1]).remove(0).unwrap().unwrap().inode != 0);
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
