//! Which process holds a socket, as `ss -p` finds it: the socket table gives the socket's inode (sock_diag), and
//! the process whose /proc/PID/fd has a link to `socket:[INODE]` holds it. Never the task a tracepoint fired on,
//! which is whatever the CPU was running (softirq, a timer).
//!
//! Reading another user's /proc/PID/fd needs root (or CAP_SYS_PTRACE). A watch started as root gives up root once
//! its capture and trace are open, so [`Owners::start`] first forks a small helper, `tcw-procmap`, that keeps root
//! only to read /proc: it reads socket inodes from a pipe and answers with their process, nothing else (no network,
//! no file written, no other input), and ends when the pipe closes (or its parent dies). It must be started while
//! the process has one thread: a fork copies only the caller's thread.
//!
//! [`Lookups`] runs on a thread of its own: the watch asks for an address pair, and gets the answer later on a
//! channel, so the capture is never held up by /proc.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use super::sockdiag;
use crate::model::tcp_state::TcpState;

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// Its command name (/proc/PID/comm, at most 15 bytes).
    pub comm: String,
}

/// Every socket inode held by a process, from /proc/*/fd (the first process found for an inode several hold).
pub fn scan() -> HashMap<u64, Owner> {
    let mut out = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        if let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
            scan_pid(pid, &mut out, &[]);
        }
    }
    out
}

/// The socket inodes process `pid` holds, added to `out`; true when it holds any. With `wanted`, it stops as soon
/// as every one of those is in `out` (a busy server's table is read in part, not whole, per lookup).
fn scan_pid(pid: u32, out: &mut HashMap<u64, Owner>, wanted: &[u64]) -> bool {
    let Ok(dir) = std::ffi::CString::new(format!("/proc/{pid}/fd")) else {
        return false;
    };
    // opendir and readlinkat on its descriptor: readlink(2) of a whole path walked /proc/PID/fd again for each
    // descriptor, a third of the helper's time under load
    // SAFETY: a NUL-terminated path; the stream is closed below on every way out of the loop.
    let stream = unsafe { libc::opendir(dir.as_ptr()) };
    if stream.is_null() {
        return false;
    }
    // SAFETY: `stream` is open.
    let dirfd = unsafe { libc::dirfd(stream) };
    let mut missing = wanted
        .iter()
        .filter(|i| **i != 0 && !out.contains_key(i))
        .count();
    let mut comm: Option<String> = None;
    let mut link = [0u8; 64];
    loop {
        // SAFETY: `stream` is open; the entry is read before the next readdir.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            break;
        }
        // SAFETY: d_name is NUL-terminated inside the entry; `link` is ours with its true length.
        let n = unsafe {
            libc::readlinkat(
                dirfd,
                (*entry).d_name.as_ptr(),
                link.as_mut_ptr().cast(),
                link.len(),
            )
        };
        let Some(inode) = usize::try_from(n)
            .ok()
            .and_then(|n| link.get(..n))
            .and_then(|l| l.strip_prefix(b"socket:["))
            .and_then(|l| l.strip_suffix(b"]"))
            .and_then(|l| std::str::from_utf8(l).ok())
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let comm = comm.get_or_insert_with(|| comm_of(pid).unwrap_or_default());
        if let std::collections::hash_map::Entry::Vacant(e) = out.entry(inode) {
            e.insert(Owner {
                pid,
                comm: comm.clone(),
            });
            if missing > 0 && wanted.contains(&inode) {
                missing -= 1;
                if missing == 0 {
                    break;
                }
            }
        }
    }
    // SAFETY: opened above, closed once.
    unsafe { libc::closedir(stream) };
    comm.is_some()
}

/// /proc/PID/comm without its newline.
pub fn comm_of(pid: u32) -> Option<String> {
    let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(c.trim_end_matches('\n').to_string())
}

/// The parent of `pid`, from /proc/PID/stat (readable by anyone).
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// True when `pid` is `ancestor` or one of its descendants (while both live).
pub fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut p = pid;
    for _ in 0..64 {
        if p == ancestor {
            return true;
        }
        match parent_of(p) {
            Some(parent) if parent > 1 && parent != p => p = parent,
            _ => return false,
        }
    }
    false
}

/// True when a process `pid` exists.
pub fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// How sockets are mapped to processes: by a root helper (see the module's header), or in this process.
pub enum Owners {
    Helper {
        to: std::fs::File,
        /// Buffered: an answer is read whole, not a read(2) per field.
        from: std::io::BufReader<std::fs::File>,
    },
    Here(Finder),
}

/// At most one scan of the whole of /proc per this long (the processes seen already are looked at more often).
const RESCAN_EVERY: Duration = Duration::from_millis(200);

impl Owners {
    /// As root and with one thread, fork the helper; otherwise look in this process (what its user may see).
    pub fn start() -> Owners {
        let single = std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() == 1);
        if super::privilege::is_root()
            && single
            && let Some(h) = fork_helper()
        {
            return h;
        }
        Owners::Here(Finder::default())
    }

    /// The owners of `inodes` (`None` for one no process holds now).
    pub fn find(&mut self, inodes: &[u64]) -> Vec<Option<Owner>> {
        match self {
            Owners::Here(finder) => finder.find(inodes),
            Owners::Helper { .. } if inodes.iter().all(|i| *i == 0) => vec![None; inodes.len()],
            Owners::Helper { to, from } => {
                ask_helper(to, from, inodes).unwrap_or_else(|_| vec![None; inodes.len()])
            }
        }
    }
}

/// Inode → process, remembered between lookups.
#[derive(Default)]
pub struct Finder {
    cache: HashMap<u64, Owner>,
    scanned: Option<Instant>,
    /// The processes that held the sockets found so far (a server's, a client's): they hold most new ones.
    hot: Vec<u32>,
}

impl Finder {
    /// The owners of `inodes`: the hot processes' fd tables first, the whole of /proc only now and then.
    pub fn find(&mut self, inodes: &[u64]) -> Vec<Option<Owner>> {
        // inode 0 is no socket a process holds (not accepted yet, or closed): nothing to look for
        let missing =
            |cache: &HashMap<u64, Owner>| inodes.iter().any(|i| *i != 0 && !cache.contains_key(i));
        // the processes that held sockets last first, and only until every inode asked for is known
        for &pid in self.hot.iter().rev() {
            if !missing(&self.cache) {
                break;
            }
            scan_pid(pid, &mut self.cache, inodes);
        }
        if missing(&self.cache) && self.scanned.is_none_or(|t| t.elapsed() >= RESCAN_EVERY) {
            self.cache = scan();
            self.scanned = Some(Instant::now());
        }
        let found: Vec<Option<Owner>> = inodes.iter().map(|i| self.cache.get(i).cloned()).collect();
        for o in found.iter().flatten() {
            // most recent last
            if self.hot.last() != Some(&o.pid) {
                self.hot.retain(|p| *p != o.pid);
                if self.hot.len() == HOT_PIDS {
                    self.hot.remove(0);
                }
                self.hot.push(o.pid);
            }
        }
        if self.cache.len() > CACHE_MAX {
            // sockets come and go: start again rather than grow
            self.cache.clear();
        }
        found
    }
}

/// How many processes are looked at first (see [`find_here`]), and how many inodes are remembered at most.
const HOT_PIDS: usize = 64;
const CACHE_MAX: usize = 100_000;

/// Request: u32 count, then u64 inodes. Answer: per inode, u32 pid (0: none), u8 length, the command name.
fn ask_helper(
    to: &mut std::fs::File,
    from: &mut std::io::BufReader<std::fs::File>,
    inodes: &[u64],
) -> std::io::Result<Vec<Option<Owner>>> {
    let mut req = (inodes.len() as u32).to_ne_bytes().to_vec();
    for i in inodes {
        req.extend(i.to_ne_bytes());
    }
    to.write_all(&req)?;
    let mut out = Vec::with_capacity(inodes.len());
    for _ in inodes {
        let mut head = [0u8; 5];
        from.read_exact(&mut head)?;
        let pid = u32::from_ne_bytes(head[..4].try_into().expect("4 bytes"));
        let mut comm = vec![0u8; usize::from(head[4])];
        from.read_exact(&mut comm)?;
        out.push((pid != 0).then(|| Owner {
            pid,
            comm: String::from_utf8_lossy(&comm).into_owned(),
        }));
    }
    Ok(out)
}

fn pipe() -> Option<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the array we own.
    (unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == 0).then_some((fds[0], fds[1]))
}

fn fork_helper() -> Option<Owners> {
    let (req_r, req_w) = pipe()?;
    let (ans_r, ans_w) = pipe()?;
    // SAFETY: the process has one thread (checked by the caller), so the child may allocate; it touches only the
    // two pipe ends it keeps and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return None;
    }
    if pid == 0 {
        // SAFETY: see above.
        unsafe { helper_main(req_r, ans_w) }
    }
    // SAFETY: the child's ends, which this process does not use; the others become Files owned once.
    unsafe {
        libc::close(req_r);
        libc::close(ans_w);
        Some(Owners::Helper {
            to: std::fs::File::from_raw_fd(req_w),
            from: std::io::BufReader::with_capacity(1 << 16, std::fs::File::from_raw_fd(ans_r)),
        })
    }
}

/// The helper's whole life: answer inode questions until the pipe closes.
unsafe fn helper_main(req: RawFd, ans: RawFd) -> ! {
    unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_IGN);
        }
        // end with the watch, however it ends
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        libc::prctl(
            libc::PR_SET_NAME,
            c"tcw-procmap".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
        // keep the two pipe ends alone, as descriptors 0 and 1
        if libc::dup2(req, 0) < 0 || libc::dup2(ans, 1) < 0 {
            libc::_exit(1);
        }
        libc::syscall(libc::SYS_close_range, 2u32, u32::MAX, 0u32);
        let mut input = std::io::BufReader::with_capacity(1 << 16, std::fs::File::from_raw_fd(0));
        let mut output = std::fs::File::from_raw_fd(1);
        let mut finder = Finder::default();
        loop {
            let mut n = [0u8; 4];
            if input.read_exact(&mut n).is_err() {
                libc::_exit(0);
            }
            let n = u32::from_ne_bytes(n).min(1 << 16) as usize;
            let mut inodes = Vec::with_capacity(n);
            for _ in 0..n {
                let mut i = [0u8; 8];
                if input.read_exact(&mut i).is_err() {
                    libc::_exit(0);
                }
                inodes.push(u64::from_ne_bytes(i));
            }
            let mut answer = Vec::new();
            for owner in finder.find(&inodes) {
                let (pid, comm) = owner.map_or((0, String::new()), |o| (o.pid, o.comm));
                let comm = &comm.as_bytes()[..comm.len().min(255)];
                answer.extend(pid.to_ne_bytes());
                answer.push(comm.len() as u8);
                answer.extend(comm);
            }
            if output.write_all(&answer).is_err() {
                libc::_exit(0);
            }
        }
    }
}

/// Which end of a connection a lookup is for, as the caller names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The connection had ended (a RST, or a FIN each way) before it was asked: its sockets are out of the table
    /// or in TIME_WAIT, held by no process, so only the listener of its local port is asked.
    pub ended: bool,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The process holding the connection's own socket.
    Holder(Owner),
    /// The connection's socket was not (or no longer) held by a process; this one holds the listener of its local
    /// port (the connection was most likely accepted from it: inferred).
    Listener(Owner),
    /// The socket table has no socket for it (it is not local, or it was gone before it was looked up).
    NotLocal,
    /// Its socket was held by no process we could see, each time it was looked up.
    Unknown,
    /// Its socket was an orphan when looked up: its process had closed it (the kernel still ends the connection).
    Orphan,
    /// Not looked up: the connection had ended before its turn came (and no listener holds its local port).
    Ended,
}

/// One answer: the ask, and what was found.
pub type Answer = (Ask, Found);

/// How many times a socket not yet held by a process (not yet accepted) is looked up again, and how far apart.
const TRIES: u32 = 16;
const RETRY_EVERY: Duration = Duration::from_millis(25);

/// How long the thread waits, after an ask, for others to ask with it.
const GATHER: Duration = Duration::from_millis(5);
/// A batch this large says the thread is busy (then it gathers).
const BUSY_BATCH: usize = 32;

/// A thread that answers lookups.
pub struct Lookups {
    tx: SyncSender<Ask>,
    /// Asks refused because too many were waiting.
    pub refused: u64,
}

/// Asks waiting at most; beyond this a lookup is refused (and the connection's process is not known). A batch of a
/// thousand takes 5–10 ms on a busy 2-CPU machine, and the thread is not always on a CPU: at 20,000 connections a
/// second (40,000 asks) this is 200 ms of asks.
const QUEUE: usize = 8192;

impl Lookups {
    /// Start the thread with `owners`; answers come on `answers`.
    pub fn start(owners: Owners, answers: Sender<Answer>) -> std::io::Result<Lookups> {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("procmap".into())
            .spawn(move || serve(owners, rx, answers))?;
        Ok(Lookups { tx, refused: 0 })
    }

    /// Lookups no thread answers, and the asks they receive: for tests of who is asked what.
    #[cfg(test)]
    pub fn unserved() -> (Lookups, Receiver<Ask>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        (Lookups { tx, refused: 0 }, rx)
    }

    /// Ask for the process on the `local` end of a connection to `remote`; false when refused (too many waiting).
    pub fn ask(&mut self, ask: Ask) -> bool {
        match self.tx.try_send(ask) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.refused += 1;
                false
            }
        }
    }
}

fn serve(mut owners: Owners, rx: Receiver<Ask>, answers: Sender<Answer>) {
    // (ask, tries so far, when to try next)
    let mut waiting: Vec<(Ask, u32, Instant)> = Vec::new();
    // one sock_diag socket for the thread's life (opened again if it could not be)
    let mut diag = sockdiag::Diag::open().ok();
    let mut busy = false;
    loop {
        let wait = waiting
            .iter()
            .map(|w| w.2.saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(Duration::from_millis(200));
        match rx.recv_timeout(wait) {
            Ok(ask) => {
                waiting.push((ask, 0, Instant::now()));
                // when busy, the asks of the next few ms in the same batch: each batch costs a few system calls
                // and a round trip to the /proc helper whatever its size; when not, no wait (a short
                // connection's sockets are gone within a millisecond)
                if busy {
                    std::thread::sleep(GATHER);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
        while let Ok(ask) = rx.try_recv() {
            waiting.push((ask, 0, Instant::now()));
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = waiting.drain(..).partition(|w| w.2 <= now);
        waiting = later;
        if diag.is_none() {
            diag = sockdiag::Diag::open().ok();
        }
        busy = due.len() >= BUSY_BATCH;
        for (ask, found) in look_up(&mut owners, due, &mut waiting, diag.as_ref()) {
            if answers.send((ask, found)).is_err() {
                return;
            }
        }
    }
}

/// Look up every due ask at once: one datagram of sock_diag questions for the batch (a question is a hash lookup
/// in the kernel; a dump of the table, tried before, walks every socket — under load mostly TIME_WAIT entries,
/// 20–40 ms a dump — and cost more than all the questions together), then one /proc look for all their inodes.
/// Those not held by a process yet go back in `waiting`.
fn look_up(
    owners: &mut Owners,
    due: Vec<(Ask, u32, Instant)>,
    waiting: &mut Vec<(Ask, u32, Instant)>,
    diag: Option<&sockdiag::Diag>,
) -> Vec<(Ask, Found)> {
    let mut out = Vec::new();
    let mut asked: Vec<(Ask, u32, sockdiag::DiagSocket)> = Vec::new();
    let (ended, due): (Vec<_>, Vec<_>) = due.into_iter().partition(|(a, _, _)| a.ended);
    let mut closed: Vec<Ask> = ended.into_iter().map(|(a, _, _)| a).collect();
    let together = match diag {
        Some(d) => d.sockets_of(
            &due.iter()
                .map(|(a, _, _)| (a.local, a.remote))
                .collect::<Vec<_>>(),
        ),
        None => Vec::new(),
    };
    let mut together = together.into_iter();
    for (ask, tries, _) in due {
        let answer = match (together.next(), diag) {
            (Some(Ok(a)), _) => Ok(a),
            // an answer that did not come back (or no sock_diag socket): the question alone
            (_, Some(d)) => d.socket_of(ask.local, ask.remote),
            (_, None) => sockdiag::socket_of(ask.local, ask.remote),
        };
        match answer {
            Ok(Some(s)) => asked.push((ask, tries, s)),
            Ok(None) | Err(_) => out.push((ask, Found::NotLocal)),
        }
    }
    let inodes: Vec<u64> = asked.iter().map(|(_, _, s)| s.inode).collect();
    let found = owners.find(&inodes);
    for ((ask, tries, s), owner) in asked.into_iter().zip(found) {
        match owner {
            Some(o) if !s.listener && s.inode != 0 => out.push((ask, Found::Holder(o))),
            // not accepted yet (no inode), or accepted but not in an fd table we read yet: look again shortly
            _ if !s.listener && (s.inode != 0 || not_accepted(s.state)) && tries + 1 < TRIES => {
                waiting.push((ask, tries + 1, Instant::now() + RETRY_EVERY));
            }
            Some(o) if s.listener => out.push((ask, Found::Listener(o))),
            // no inode, past the states of the accept queue: its process closed it, nobody will hold it again
            _ if !s.listener && s.inode == 0 => closed.push(ask),
            _ => out.push((ask, Found::Unknown)),
        }
    }
    out.extend(listeners_of(owners, diag, closed));
    out
}

/// For sockets their process had closed: the holder of the listener of their local port, as when the connection
/// is not in the table any more (the kernel's own fallback, which a closed socket still in the table does not
/// reach); else [`Found::Orphan`] ([`Found::Ended`] for an ask made after its connection ended). Asked with
/// remote port 0, which no connection has; once per local address and remote family in the batch (a busy server's
/// closed sockets share one listener).
fn listeners_of(
    owners: &mut Owners,
    diag: Option<&sockdiag::Diag>,
    closed: Vec<Ask>,
) -> Vec<(Ask, Found)> {
    let key = |a: &Ask| (a.local, SocketAddr::new(a.remote.ip(), 0));
    let mut pairs: Vec<(SocketAddr, SocketAddr)> = closed.iter().map(key).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let answers = diag.map(|d| d.sockets_of(&pairs)).unwrap_or_default();
    let inodes: Vec<u64> = (0..pairs.len())
        .map(|i| match answers.get(i) {
            Some(Ok(Some(s))) if s.state == Some(TcpState::Listen) => s.inode,
            _ => 0,
        })
        .collect();
    let found = owners.find(&inodes);
    closed
        .into_iter()
        .map(|ask| {
            let i = pairs.binary_search(&key(&ask)).ok();
            match i.map(|i| (inodes[i], &found[i])) {
                Some((inode, Some(o))) if inode != 0 => (ask, Found::Listener(o.clone())),
                _ if ask.ended => (ask, Found::Ended),
                _ => (ask, Found::Orphan),
            }
        })
        .collect()
}

/// The states a socket with no inode is in while it waits in a listener's accept queue (any other state without
/// an inode is an orphan: closed by its process).
fn not_accepted(state: Option<TcpState>) -> bool {
    matches!(
        state,
        Some(TcpState::SynReceived | TcpState::Established | TcpState::CloseWait)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_of_this_process_is_found_with_its_command() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (a, _b) = crate::testing::accepted(&l);
        let s = sockdiag::socket_of(a.local_addr().unwrap(), a.peer_addr().unwrap())
            .unwrap()
            .unwrap();
        assert!(s.inode != 0 && !s.listener);
        let mut here = Owners::Here(Finder::default());
        let found = here.find(&[s.inode, u64::MAX]);
        assert_eq!(found[0].as_ref().map(|o| o.pid), Some(std::process::id()));
        assert_eq!(found[1], None);
    }

    #[test]
    fn a_dual_stack_servers_ipv4_connection_is_found_by_the_ipv4_addresses_the_packets_show() {
        let Ok(l) = std::net::TcpListener::bind("[::]:0") else {
            return crate::testing::skip("no IPv6 on this machine");
        };
        let port = l.local_addr().unwrap().port();
        let a = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_b, _) = l.accept().unwrap();
        // as the packets show it: IPv4 on both ends
        let (client, server) = (a.local_addr().unwrap(), a.peer_addr().unwrap());
        let ask = Ask {
            local: server,
            remote: client,
            ended: false,
        };
        let s = sockdiag::Diag::open()
            .unwrap()
            .sockets_of(&[(ask.local, ask.remote)]);
        let s = s[0].as_ref().unwrap().expect("found by its IPv4 addresses");
        assert!(!s.listener && s.inode != 0, "{s:?}");
        assert_eq!(
            Owners::Here(Finder::default()).find(&[s.inode])[0]
                .as_ref()
                .map(|o| o.pid),
            Some(std::process::id())
        );
    }

    #[test]
    fn one_batch_finds_a_connections_both_ends_and_the_listener_and_their_process() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (a, b) = crate::testing::accepted(&l);
        let (la, lb) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // a pair the table does not have, on the listener's port: the listener, inferred
        let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
        // closed by this process, still in the table (FIN_WAIT): a server end is the listener's (inferred), a
        // client end nobody's
        let (c, d) = crate::testing::accepted(&l);
        let (lc, ld) = (c.local_addr().unwrap(), d.local_addr().unwrap());
        let (e, f) = crate::testing::accepted(&l);
        let (le, lf) = (e.local_addr().unwrap(), f.local_addr().unwrap());
        drop((d, e));
        let pairs = [
            (la, lb),
            (lb, la),
            (lb, other),
            (la, other),
            (ld, lc),
            (le, lf),
        ];
        let due: Vec<(Ask, u32, Instant)> = pairs
            .map(|(local, remote)| {
                (
                    Ask {
                        local,
                        remote,
                        ended: false,
                    },
                    0,
                    Instant::now(),
                )
            })
            .into();
        let mut waiting = Vec::new();
        let mut owners = Owners::Here(Finder::default());
        let diag = sockdiag::Diag::open().unwrap();
        let got = look_up(&mut owners, due, &mut waiting, Some(&diag));
        assert!(waiting.is_empty(), "{waiting:?}");
        let me = std::process::id();
        let of = |local, remote| {
            got.iter()
                .find(|(a, _)| {
                    *a == Ask {
                        local,
                        remote,
                        ended: false,
                    }
                })
                .map(|(_, f)| f.clone())
        };
        let found = pairs.map(|(l, r)| of(l, r).unwrap());
        assert!(
            matches!(&found[0], Found::Holder(o) if o.pid == me),
            "{found:?}"
        );
        assert!(
            matches!(&found[1], Found::Holder(o) if o.pid == me),
            "{found:?}"
        );
        assert!(
            matches!(&found[2], Found::Listener(o) if o.pid == me),
            "{found:?}"
        );
        assert_eq!(found[3], Found::NotLocal);
        assert!(
            matches!(&found[4], Found::Listener(o) if o.pid == me),
            "{found:?}"
        );
        assert_eq!(found[5], Found::Orphan);
        drop((c, f));
        assert!(descends_from(std::process::id(), std::process::id()));
        assert!(!descends_from(1, std::process::id()));
    }

    #[test]
    fn an_ended_connections_ends_are_named_by_their_ports_listener_or_said_not_looked_up() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (a, b) = crate::testing::accepted(&l);
        let (la, lb) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // both sockets are still held: an ended ask does not look for them (the capture says they are gone)
        let asks =
            [(lb, la), (la, lb), (lb, "127.0.0.1:2".parse().unwrap())].map(|(local, remote)| Ask {
                local,
                remote,
                ended: true,
            });
        let due = asks.iter().map(|a| (*a, 0, Instant::now())).collect();
        let mut owners = Owners::Here(Finder::default());
        let diag = sockdiag::Diag::open().unwrap();
        let mut waiting = Vec::new();
        let got = look_up(&mut owners, due, &mut waiting, Some(&diag));
        assert!(waiting.is_empty(), "{waiting:?}");
        let of = |ask: &Ask| got.iter().find(|(a, _)| a == ask).map(|(_, f)| f.clone());
        let me = std::process::id();
        // the server's two ends on the listener's port: the listener's holder (inferred), asked once for both
        for ask in [&asks[0], &asks[2]] {
            assert!(
                matches!(of(ask), Some(Found::Listener(o)) if o.pid == me),
                "{got:?}"
            );
        }
        // the client's port has no listener: not looked up, said so (not a socket found or missed)
        assert_eq!(of(&asks[1]), Some(Found::Ended));
        drop((a, b));
    }
}
