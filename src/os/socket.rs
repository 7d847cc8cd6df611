//! Thin, recorded socket calls: each wrapper reads the clock ([`now`]) just before and just after the system call,
//! keeps what it returned, and reads the socket's kernel state afterwards. Only this file makes the pair's socket
//! system calls. A failed call is recorded with its errno, not returned as an error: it is part of the story.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use crate::model::calls::{CallKind, Outcome, Peer, SocketCall};
use crate::model::segment::TimestampNs;
use crate::model::tcp_state::TcpState;
use crate::os::sockdiag;
use crate::os::sockopt::set_int;
pub use crate::os::sockopt::{Shut, SockOpt};

/// CLOCK_REALTIME in ns: the clock libpcap stamps frames with, so calls and segments share one time line.
pub fn now() -> TimestampNs {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Where recorded calls go; shared by A's and B's threads.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<SocketCall>>>);

impl Recorder {
    fn push(&self, call: SocketCall) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(call);
    }

    pub fn take(&self) -> Vec<SocketCall> {
        let mut calls = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        calls.sort_by_key(|c| c.t_start);
        calls
    }
}

// sockaddr helpers ---------------------------------------------------------------------------------------------

fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; we fill the variant that matches the address.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn from_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::from((
                sin.sin_addr.s_addr.to_ne_bytes(),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::from((
                sin6.sin6_addr.s6_addr,
                u16::from_be(sin6.sin6_port),
            )))
        }
        _ => None,
    }
}

fn local_addr(fd: RawFd) -> Option<SocketAddr> {
    // SAFETY: getsockname writes at most `len` bytes into storage we own.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockname(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    (rc == 0).then(|| from_sockaddr(&storage)).flatten()
}

fn new_tcp_socket(v6: bool) -> std::io::Result<RawFd> {
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain socket(2); the fd is owned by the caller.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(fd)
    }
}

/// B's listening socket, or (for `refused`) a port that is bound but not listening, so no one else takes it.
pub struct Listener {
    /// -1 once `close_listener` closed it.
    fd: AtomicI32,
    pub addr: SocketAddr,
}

impl Listener {
    /// Bind to a port the kernel picks on `ip`; listen unless `listen` is false.
    pub fn bind(ip: std::net::IpAddr, listen: bool) -> std::io::Result<Listener> {
        let fd = new_tcp_socket(ip.is_ipv6())?;
        let (sa, len) = to_sockaddr(SocketAddr::new(ip, 0));
        let mut guard = Listener {
            fd: AtomicI32::new(fd),
            addr: SocketAddr::new(ip, 0),
        };
        // a port held but not listened on may be shared with A's own socket (self-connect): both ask SO_REUSEADDR
        if !listen {
            set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
        }
        // SAFETY: bind/listen on our own fd with a valid sockaddr.
        if unsafe { libc::bind(fd, (&sa as *const libc::sockaddr_storage).cast(), len) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if listen && unsafe { libc::listen(fd, 8) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        guard.addr = local_addr(fd).ok_or_else(|| std::io::Error::other("getsockname failed"))?;
        Ok(guard)
    }

    /// accept(2), recorded as B's call; a failure carries the errno it returned.
    pub fn accept(&self, rec: &Recorder) -> std::io::Result<Sock> {
        let t_start = now();
        // SAFETY: accept4 with null address arguments.
        let fd = unsafe {
            libc::accept4(
                self.fd.load(Ordering::Relaxed),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        let t_end = now();
        let err = (fd < 0).then(errno);
        let sock = Sock {
            peer: Peer::B,
            fd,
            rec: rec.clone(),
            local: None,
            remote: None,
            open: fd >= 0,
        };
        let sock = sock.with_addrs();
        rec.push(SocketCall {
            peer: Peer::B,
            kind: CallKind::Accept,
            call: "accept()".into(),
            t_start,
            t_end,
            outcome: match err {
                Some(errno) => Outcome::Err { errno },
                None => Outcome::Ok {
                    ret: i64::from(fd),
                    data: vec![],
                },
            },
            state: sock.kernel_state(),
            unread_before: None,
        });
        match err {
            Some(e) => Err(std::io::Error::from_raw_os_error(e)),
            None => Ok(sock),
        }
    }
}

impl Listener {
    /// True when a connection waits in the accept queue (poll(2) for POLLIN, not waiting): accept() will not block.
    pub fn has_pending(&self) -> bool {
        poll_now(self.fd.load(Ordering::Relaxed), libc::POLLIN)
    }

    /// close(2) of the listening socket, recorded as B's `close(listener)`: connections still in its accept queue
    /// go with it.
    pub fn close(&self, rec: &Recorder) -> SocketCall {
        let fd = self.fd.swap(-1, Ordering::Relaxed);
        let t_start = now();
        // SAFETY: we owned the fd, and no one uses it after the swap.
        let rc = if fd >= 0 {
            unsafe { libc::close(fd) }
        } else {
            -1
        };
        let t_end = now();
        let call = SocketCall {
            peer: Peer::B,
            kind: CallKind::Close,
            call: "close(listener)".into(),
            t_start,
            t_end,
            outcome: Sock::outcome(rc as isize, vec![]),
            state: None,
            unread_before: None,
        };
        rec.push(call.clone());
        call
    }
}

/// poll(2) one fd for `events` without waiting: true when any of them (or an error, or a hang-up) is ready.
fn poll_now(fd: RawFd, events: libc::c_short) -> bool {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one pollfd we own, no timeout.
    let rc = unsafe { libc::poll(&mut p, 1, 0) };
    rc > 0 && p.revents != 0
}

impl Drop for Listener {
    fn drop(&mut self) {
        let fd = *self.fd.get_mut();
        if fd >= 0 {
            // SAFETY: we own the fd.
            unsafe { libc::close(fd) };
        }
    }
}

/// A connected (or connecting) socket of A or B whose calls are recorded.
pub struct Sock {
    pub peer: Peer,
    fd: RawFd,
    rec: Recorder,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    open: bool,
}

impl Sock {
    /// A's socket, not yet connected.
    pub fn new(peer: Peer, v6: bool, rec: &Recorder) -> std::io::Result<Sock> {
        Ok(Sock {
            peer,
            fd: new_tcp_socket(v6)?,
            rec: rec.clone(),
            local: None,
            remote: None,
            open: true,
        })
    }

    fn with_addrs(mut self) -> Sock {
        if self.fd >= 0 {
            self.local = local_addr(self.fd);
            // SAFETY: getpeername writes into storage we own.
            let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            let rc = unsafe {
                libc::getpeername(
                    self.fd,
                    (&mut storage as *mut libc::sockaddr_storage).cast(),
                    &mut len,
                )
            };
            self.remote = (rc == 0).then(|| from_sockaddr(&storage)).flatten();
        }
        self
    }

    /// The kernel's TCP state of this socket: TCP_INFO while the fd is open, /proc/net/tcp once it is closed.
    pub fn kernel_state(&self) -> Option<TcpState> {
        if self.open {
            // SAFETY: getsockopt(TCP_INFO) writes at most `len` bytes into the struct we own.
            let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
            let rc = unsafe {
                libc::getsockopt(
                    self.fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_INFO,
                    (&mut info as *mut libc::tcp_info).cast(),
                    &mut len,
                )
            };
            (rc == 0)
                .then(|| TcpState::from_linux(info.tcpi_state))
                .flatten()
        } else {
            match (self.local, self.remote) {
                // a closed socket that is in no table any more has gone to CLOSED
                (Some(l), Some(r)) => Some(sockdiag::state_of(l, r).unwrap_or(TcpState::Closed)),
                _ => Some(TcpState::Closed),
            }
        }
    }

    /// Bytes received and not yet read (SIOCINQ).
    pub fn unread(&self) -> Option<u32> {
        if !self.open {
            return None;
        }
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        let rc = unsafe { libc::ioctl(self.fd, libc::FIONREAD, &mut n) };
        (rc == 0).then_some(n as u32)
    }

    fn record(
        &self,
        kind: CallKind,
        call: String,
        t_start: TimestampNs,
        t_end: TimestampNs,
        outcome: Outcome,
        unread_before: Option<u32>,
    ) -> SocketCall {
        let c = SocketCall {
            peer: self.peer,
            kind,
            call,
            t_start,
            t_end,
            outcome,
            state: self.kernel_state(),
            unread_before,
        };
        self.rec.push(c.clone());
        c
    }

    fn outcome(rc: isize, data: Vec<u8>) -> Outcome {
        if rc < 0 {
            Outcome::Err { errno: errno() }
        } else {
            Outcome::Ok {
                ret: rc as i64,
                data,
            }
        }
    }

    /// bind(2) to `addr` (not recorded: the model has no bind call; the address shows in every row after).
    pub fn bind(&mut self, addr: SocketAddr) -> std::io::Result<()> {
        let (sa, len) = to_sockaddr(addr);
        // SAFETY: bind on our fd with a valid sockaddr of `len` bytes.
        if unsafe { libc::bind(self.fd, (&sa as *const libc::sockaddr_storage).cast(), len) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.local = local_addr(self.fd);
        Ok(())
    }

    pub fn connect(&mut self, to: SocketAddr) -> SocketCall {
        let (sa, len) = to_sockaddr(to);
        let t_start = now();
        // SAFETY: connect with a valid sockaddr of `len` bytes.
        let rc =
            unsafe { libc::connect(self.fd, (&sa as *const libc::sockaddr_storage).cast(), len) };
        let t_end = now();
        let outcome = Self::outcome(rc as isize, vec![]);
        // After a refused connect the socket is bound to the wildcard address; its segments came from `to`'s side.
        self.local = local_addr(self.fd).map(|l| {
            if l.ip().is_unspecified() {
                SocketAddr::new(to.ip(), l.port())
            } else {
                l
            }
        });
        self.remote = Some(to);
        self.record(
            CallKind::Connect,
            format!("connect({to})"),
            t_start,
            t_end,
            outcome,
            None,
        )
    }

    pub fn send(&self, data: &[u8]) -> SocketCall {
        let t_start = now();
        // MSG_NOSIGNAL: a send on a reset connection must fail with EPIPE, not kill the process with SIGPIPE.
        // SAFETY: the buffer is valid for data.len() bytes.
        let rc = unsafe {
            libc::send(
                self.fd,
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        let t_end = now();
        let sent = if rc > 0 {
            data[..rc as usize].to_vec()
        } else {
            vec![]
        };
        self.record(
            CallKind::Send,
            format!("send({} bytes)", data.len()),
            t_start,
            t_end,
            Self::outcome(rc, sent),
            None,
        )
    }

    /// recv(2) of at most `max` bytes; blocks until something (data, end of stream, an error) arrives.
    pub fn recv(&self, max: usize) -> SocketCall {
        let mut buf = vec![0u8; max];
        let t_start = now();
        // SAFETY: the buffer is valid for `max` bytes.
        let rc = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), max, 0) };
        let t_end = now();
        buf.truncate(rc.max(0) as usize);
        self.record(
            CallKind::Recv,
            format!("recv({max})"),
            t_start,
            t_end,
            Self::outcome(rc, buf),
            None,
        )
    }

    pub fn shutdown_write(&self) -> SocketCall {
        let t_start = now();
        // SAFETY: shutdown on our fd.
        let rc = unsafe { libc::shutdown(self.fd, libc::SHUT_WR) };
        let t_end = now();
        self.record(
            CallKind::Shutdown,
            "shutdown(SHUT_WR)".into(),
            t_start,
            t_end,
            Self::outcome(rc as isize, vec![]),
            None,
        )
    }

    /// SO_LINGER {on, 0 s}: close() will reset the connection instead of closing it gracefully.
    pub fn set_linger_zero(&self) -> SocketCall {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        let t_start = now();
        // SAFETY: setsockopt with a linger struct of the right size.
        let rc = unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        let t_end = now();
        self.record(
            CallKind::SetSockOpt,
            "setsockopt(SO_LINGER, {on, 0 s})".into(),
            t_start,
            t_end,
            Self::outcome(rc as isize, vec![]),
            None,
        )
    }

    /// Bytes sent and not yet acknowledged by the peer, with those not sent yet (SIOCOUTQ).
    pub fn unacked(&self) -> Option<u32> {
        if !self.open {
            return None;
        }
        let mut n: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int.
        let rc = unsafe { libc::ioctl(self.fd, libc::TIOCOUTQ, &mut n) };
        (rc == 0).then_some(n as u32)
    }

    /// True when recv() would not block: bytes queued, end of stream, or an error pending (poll(2), no waiting).
    pub fn readable(&self) -> bool {
        self.open && poll_now(self.fd, libc::POLLIN | libc::POLLRDHUP)
    }

    /// shutdown(2) with any `how`.
    pub fn shutdown(&self, how: Shut) -> SocketCall {
        let t_start = now();
        // SAFETY: shutdown on our fd.
        let rc = unsafe { libc::shutdown(self.fd, how.raw()) };
        let t_end = now();
        self.record(
            CallKind::Shutdown,
            format!("shutdown({})", how.name()),
            t_start,
            t_end,
            Self::outcome(rc as isize, vec![]),
            None,
        )
    }

    /// setsockopt(2) of one of the options in [`SockOpt`], recorded.
    pub fn set_option(&self, opt: SockOpt) -> SocketCall {
        let (level, name, _) = opt.key();
        let t_start = now();
        let rc = match opt {
            SockOpt::Linger(l) => {
                let linger = libc::linger {
                    l_onoff: i32::from(l.is_some()),
                    l_linger: l.map_or(0, i32::from),
                };
                // SAFETY: setsockopt with a linger struct of the right size.
                unsafe {
                    libc::setsockopt(
                        self.fd,
                        level,
                        name,
                        (&linger as *const libc::linger).cast(),
                        std::mem::size_of::<libc::linger>() as libc::socklen_t,
                    )
                }
            }
            SockOpt::KeepAlive(on) | SockOpt::NoDelay(on) | SockOpt::ReuseAddr(on) => {
                set_int(self.fd, level, name, i32::from(on))
            }
            SockOpt::Linger2(v)
            | SockOpt::KeepIdle(v)
            | SockOpt::KeepIntvl(v)
            | SockOpt::KeepCnt(v)
            | SockOpt::UserTimeout(v)
            | SockOpt::RcvBuf(v) => set_int(self.fd, level, name, v),
        };
        let t_end = now();
        self.record(
            CallKind::SetSockOpt,
            opt.call_text(),
            t_start,
            t_end,
            Self::outcome(rc as isize, vec![]),
            None,
        )
    }

    /// close(2), recording the unread bytes it throws away.
    pub fn close(&mut self) -> SocketCall {
        let unread = self.unread();
        let t_start = now();
        // SAFETY: we own the fd and mark it closed right after.
        let rc = unsafe { libc::close(self.fd) };
        let t_end = now();
        self.open = false;
        self.record(
            CallKind::Close,
            "close()".into(),
            t_start,
            t_end,
            Self::outcome(rc as isize, vec![]),
            unread,
        )
    }

    /// Have the kernel destroy this socket from outside (SOCK_DESTROY, through `destroyer`, started while the
    /// process had CAP_NET_ADMIN), recorded as `peer`'s `SOCK_DESTROY (ss -K)` returning the number of sockets the
    /// kernel destroyed. When it destroyed none, nothing is recorded: the error says why it may have refused.
    pub fn destroyed_by(
        &self,
        destroyer: &mut crate::os::sockdestroy::Destroyer,
    ) -> std::io::Result<SocketCall> {
        let (Some(local), Some(remote)) = (self.local, self.remote) else {
            return Err(std::io::Error::other(format!(
                "{}'s socket is not connected: there is no connection to destroy",
                self.peer
            )));
        };
        let t_start = now();
        let n = destroyer.destroy(local, remote)?;
        let t_end = now();
        if n == 0 {
            return Err(std::io::Error::other(
                "the kernel destroyed no socket: SOCK_DESTROY needs CAP_NET_ADMIN when the run starts (run as \
                 root) and a kernel built with CONFIG_INET_DIAG_DESTROY",
            ));
        }
        let outcome = Outcome::Ok {
            ret: i64::from(n),
            data: vec![],
        };
        let call = "SOCK_DESTROY (ss -K)".to_string();
        Ok(self.record(CallKind::Destroy, call, t_start, t_end, outcome, None))
    }

    /// Wake a thread blocked in recv() on this socket after a scenario failed (shutdown makes recv() return);
    /// not recorded, as it is not part of the scenario.
    pub fn abort_blocked_recv(&self) {
        if self.open {
            // SAFETY: shutdown on our own fd.
            unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
        }
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        if self.open && self.fd >= 0 {
            // SAFETY: we own the fd; a scenario that failed midway still must not leak it.
            unsafe { libc::close(self.fd) };
        }
    }
}
