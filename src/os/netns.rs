//! A private pair of network namespaces joined by a veth, for the scenarios whose lesson is a link condition (the
//! peer vanishes, the link goes down, a rate limit): A in one namespace, B in the other.
//!
//! Everything is done through `ip` and `tc` (iproute2), by root, before a run gives up its privileges:
//! - [`Pair::create`] makes `tcw-<pid>-<n>-a` and `-b`, the veth between them (each end created directly inside its
//!   namespace, so nothing is ever left in the host's), and their addresses; then starts a *keeper*, a small
//!   `/bin/sh` process that keeps root and serves a fixed set of link changes read from its standard input
//!   ([`Link`]), one line each, and nothing else.
//! - Removal on every way out: when the keeper's input closes — [`Pair`] dropped, an error, a panic, Ctrl-C,
//!   SIGTERM, SIGKILL or a crash of this process, which all close the pipe — the keeper deletes both namespaces
//!   (deleting a namespace deletes its end of the veth, and with it the other end). It ignores SIGINT, SIGTERM and
//!   SIGHUP, so the Ctrl-C a terminal sends to the whole process group does not end it before it has cleaned up.
//! - A power cut or a killed keeper: the next [`Pair::create`] deletes every `tcw-<pid>-…` whose pid is dead
//!   ([`sweep_stale`]).
//!
//! [`Pair::enter`] moves the calling thread into one namespace (setns), so that sockets and captures opened on it
//! belong there; a socket stays in its namespace when the thread leaves, and after privileges are given up.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// Every namespace's name starts with this, then this process's pid.
pub const PREFIX: &str = "tcw-";
/// A's and B's addresses on the veth of pair `n`: 10.201.n.1 and .2 (private to the namespaces; distinct within
/// this process, so a run's B address names its pair).
pub fn addrs(n: u32) -> (Ipv4Addr, Ipv4Addr) {
    let third = (n % 250) as u8;
    (
        Ipv4Addr::new(10, 201, third, 1),
        Ipv4Addr::new(10, 201, third, 2),
    )
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Where the pairs of this process capture: B's address, A's namespace and A's end of the veth.
static CAPTURE_POINTS: Mutex<Vec<(IpAddr, String, String)>> = Mutex::new(Vec::new());

fn lock_points() -> std::sync::MutexGuard<'static, Vec<(IpAddr, String, String)>> {
    CAPTURE_POINTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// When `b` is B's address of one of our pairs: A's namespace and A's end of the veth, where its wire is captured.
pub fn capture_point(b: IpAddr) -> Option<(String, String)> {
    lock_points()
        .iter()
        .find(|(ip, _, _)| *ip == b)
        .map(|(_, ns, dev)| (ns.clone(), dev.clone()))
}

/// A link condition the keeper can set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// B's replies go nowhere (a blackhole route to A in B's namespace): A's segments still reach the wire and are
    /// captured, but nothing comes back — as if B had vanished.
    Blackhole,
    /// A's end of the veth is set down.
    Down,
    /// A's sending is limited to this rate (a tbf qdisc; `1mbit`, `500kbit`).
    Rate(String),
    /// A's segments are delayed this many ms (needs the netem qdisc, which some kernels lack).
    Delay(u32),
}

impl Link {
    /// The keeper's line for it.
    fn line(&self) -> String {
        match self {
            Link::Blackhole => "blackhole".into(),
            Link::Down => "down".into(),
            Link::Rate(r) => format!("rate {r}"),
            Link::Delay(ms) => format!("delay {ms}ms"),
        }
    }
}

/// The keeper: a fixed set of link changes, then the removal of both namespaces once its input closes.
/// Arguments: the two namespaces, A's veth end, A's address.
const KEEPER: &str = r#"trap '' INT TERM HUP
a=$0 b=$1 va=$2 ipa=$3
while IFS=' ' read -r cmd arg; do
  case "$arg" in *[!0-9a-zA-Z.]*) echo refused; continue;; esac
  case "$cmd" in
    blackhole) ip -n "$b" route add blackhole "$ipa/32" >/dev/null 2>&1 && echo ok || echo failed;;
    down) ip -n "$a" link set "$va" down >/dev/null 2>&1 && echo ok || echo failed;;
    rate) tc -n "$a" qdisc replace dev "$va" root tbf rate "$arg" burst 32kbit latency 400ms >/dev/null 2>&1 \
            && echo ok || echo failed;;
    delay) if err=$(tc -n "$a" qdisc replace dev "$va" root netem delay "$arg" 2>&1); then echo ok
           else case "$err" in *"kind is unknown"*|*"not found"*) echo no-netem;; *) echo failed;; esac; fi;;
    *) echo refused;;
  esac
done
ip netns del "$a" 2>/dev/null
ip netns del "$b" 2>/dev/null
exit 0"#;

/// Why a pair could not be made or a link changed: one line saying what to do.
#[derive(Debug)]
pub struct NetnsError(pub String);

impl std::fmt::Display for NetnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NetnsError {}

/// Our two namespaces and their veth, removed when dropped (and on every other way out, by the keeper).
pub struct Pair {
    pub ns_a: String,
    pub ns_b: String,
    /// A's end of the veth, in A's namespace: where a capture of A's wire listens.
    pub veth_a: String,
    pub veth_b: String,
    pub addr_a: Ipv4Addr,
    pub addr_b: Ipv4Addr,
    keeper: Option<Child>,
    input: Option<ChildStdin>,
    output: Option<BufReader<ChildStdout>>,
}

fn ip(args: &[&str]) -> Result<(), NetnsError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetnsError(format!("cannot run `ip` (install iproute2): {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetnsError(format!(
            "`ip {}` failed: {} (network namespaces need root)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The names of the namespaces `ip netns list` shows.
pub fn list() -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// The pid in one of our names (`tcw-<pid>-<n>-a`), or `None` for a name that is not ours.
pub fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(PREFIX)?;
    let mut parts = rest.split('-');
    let pid = parts.next()?.parse().ok()?;
    let n = parts.next()?;
    let side = parts.next()?;
    let ours = n.chars().all(|c| c.is_ascii_digit())
        && (side == "a" || side == "b")
        && parts.next().is_none();
    ours.then_some(pid)
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Delete our namespaces whose process is dead (left by a run killed before its keeper could clean up); the names
/// deleted.
pub fn sweep_stale() -> Vec<String> {
    let mut gone = Vec::new();
    for name in list() {
        if owner_pid(&name).is_some_and(|pid| !alive(pid)) && ip(&["netns", "del", &name]).is_ok() {
            gone.push(name);
        }
    }
    gone
}

impl Pair {
    /// Make the pair (root only), after sweeping what dead runs left. Nothing is left behind when this fails.
    pub fn create() -> Result<Pair, NetnsError> {
        sweep_stale();
        let (pid, n) = (std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let ns = |side: &str| format!("{PREFIX}{pid}-{n}-{side}");
        // at most 15 bytes: `tcw` + a pid of up to 7 digits + n + a|b
        let veth = |side: &str| format!("tcw{pid}{n}{side}");
        let (addr_a, addr_b) = addrs(n);
        let mut pair = Pair {
            ns_a: ns("a"),
            ns_b: ns("b"),
            veth_a: veth("a"),
            veth_b: veth("b"),
            addr_a,
            addr_b,
            keeper: None,
            input: None,
            output: None,
        };
        // the keeper first: from here on, any way out removes what was made
        pair.start_keeper()?;
        pair.build()?;
        // the socket table of each namespace is read through a netlink socket opened inside it, now
        for (a, ip) in [(true, addr_a), (false, addr_b)] {
            let _inside = pair.enter(a)?;
            crate::os::sockdiag::answer_for(ip.into())
                .map_err(|e| NetnsError(format!("cannot open sock_diag in {}: {e}", pair.ns_a)))?;
        }
        lock_points().push((addr_b.into(), pair.ns_a.clone(), pair.veth_a.clone()));
        Ok(pair)
    }

    fn start_keeper(&mut self) -> Result<(), NetnsError> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(KEEPER)
            .args([
                &self.ns_a,
                &self.ns_b,
                &self.veth_a,
                &self.addr_a.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| NetnsError(format!("cannot start the namespaces' keeper: {e}")))?;
        self.input = child.stdin.take();
        self.output = child.stdout.take().map(BufReader::new);
        self.keeper = Some(child);
        Ok(())
    }

    fn build(&self) -> Result<(), NetnsError> {
        let (a, b, va, vb) = (&self.ns_a, &self.ns_b, &self.veth_a, &self.veth_b);
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        ip(&[
            "link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b,
        ])?;
        for (ns, dev, addr) in [(a, va, self.addr_a), (b, vb, self.addr_b)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Set a link condition, through the keeper (which kept root). Netem missing from the kernel is said in one
    /// line.
    pub fn link(&mut self, link: &Link) -> Result<(), NetnsError> {
        let (Some(input), Some(output)) = (self.input.as_mut(), self.output.as_mut()) else {
            return Err(NetnsError("the namespaces' keeper is gone".into()));
        };
        let gone = |e: std::io::Error| NetnsError(format!("the namespaces' keeper is gone: {e}"));
        writeln!(input, "{}", link.line()).map_err(gone)?;
        input.flush().map_err(gone)?;
        let mut answer = String::new();
        output.read_line(&mut answer).map_err(gone)?;
        match answer.trim() {
            "ok" => Ok(()),
            "no-netem" => Err(NetnsError(format!(
                "`{}` needs the netem qdisc, which this kernel does not have (sch_netem): it cannot be played here",
                link.line()
            ))),
            other => Err(NetnsError(format!(
                "the link change `{}` failed ({other})",
                link.line()
            ))),
        }
    }

    /// Move the calling thread into A's (`a` true) or B's namespace until the guard is dropped. Needs root.
    pub fn enter(&self, a: bool) -> Result<Entered, NetnsError> {
        let name = if a { &self.ns_a } else { &self.ns_b };
        enter(name)
    }
}

/// Pairs whose scenario is played, kept until their capture is finished (its end marker crosses the veth).
static HELD: Mutex<Vec<Pair>> = Mutex::new(Vec::new());

fn lock_held() -> std::sync::MutexGuard<'static, Vec<Pair>> {
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keep `pair` until [`release`] is called with its B address (or the process ends: its keeper removes it then).
pub fn hold(pair: Pair) {
    lock_held().push(pair);
}

/// Remove the held pair whose B address is `b`, if any.
pub fn release(b: IpAddr) {
    let pair = {
        let mut held = lock_held();
        let i = held.iter().position(|p| IpAddr::from(p.addr_b) == b);
        i.map(|i| held.remove(i))
    };
    drop(pair);
}

impl Drop for Pair {
    fn drop(&mut self) {
        lock_points().retain(|(ip, _, _)| *ip != IpAddr::from(self.addr_b));
        crate::os::sockdiag::forget(self.addr_a.into());
        crate::os::sockdiag::forget(self.addr_b.into());
        // closing its input has the keeper delete both namespaces; wait, so that they are gone when this returns
        drop(self.input.take());
        drop(self.output.take());
        if let Some(mut k) = self.keeper.take() {
            let _ = k.wait();
        }
    }
}

/// The calling thread inside another network namespace; dropping it goes back to where the thread was.
pub struct Entered {
    home: std::fs::File,
}

fn setns(fd: &impl AsRawFd) -> std::io::Result<()> {
    // SAFETY: setns with an fd we hold open; only this thread's network namespace changes.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Move the calling thread into the namespace `ip netns` calls `name`.
pub fn enter(name: &str) -> Result<Entered, NetnsError> {
    let err = |what: &str, e: std::io::Error| NetnsError(format!("cannot {what}: {e}"));
    let home = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(|e| err("open this thread's network namespace", e))?;
    let target = std::fs::File::open(format!("/run/netns/{name}"))
        .map_err(|e| err(&format!("open network namespace {name}"), e))?;
    setns(&target).map_err(|e| err(&format!("enter network namespace {name} (root only)"), e))?;
    Ok(Entered { home })
}

impl Drop for Entered {
    fn drop(&mut self) {
        let _ = setns(&self.home);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids_come_from_our_names_only() {
        assert_eq!(owner_pid("tcw-1234-0-a"), Some(1234));
        assert_eq!(owner_pid("tcw-1234-17-b"), Some(1234));
        assert_eq!(owner_pid("tcw-1234-0-c"), None);
        assert_eq!(owner_pid("tcw-x-0-a"), None);
        assert_eq!(owner_pid("tcw-1234-0-a-extra"), None);
        assert_eq!(owner_pid("docker-1234-0-a"), None);
    }

    #[test]
    fn link_lines_are_the_keepers() {
        assert_eq!(Link::Rate("1mbit".into()).line(), "rate 1mbit");
        assert_eq!(Link::Delay(100).line(), "delay 100ms");
        assert_eq!(Link::Blackhole.line(), "blackhole");
    }
}
