//! The player: a [`Script`]'s steps, one after another, as A's and B's calls on real sockets (through `os`).
//! A call marked `&` runs on a thread of its own; the next steps go on once that peer is asleep in it, until
//! `wait P returns`. Every wait, and every recv or accept that could block, is bounded.

use std::cell::{Cell, RefCell};
use std::sync::mpsc;

use crate::model::calls::{Peer, SocketCall, errno_name};
use crate::model::run::{EndStates, Mode, PairRun};
use crate::model::seen::Seen;
use crate::model::tcp_state::TcpState;
use crate::os::netns::Pair;
use crate::os::sockdestroy::Destroyer;
use crate::os::socket::{Listener, Recorder, Sock};
use crate::os::{proc, sockdiag};
use crate::scenario::script::{At, Call, Script, Step, Wait};
use crate::scenario::wait::{self, ScenarioError};

type Done = Result<(), ScenarioError>;

/// The sockets the steps may use: `None` for a peer that is asleep in a background call (or has no socket yet,
/// inside the slot).
struct Ends<'s> {
    a: Option<&'s mut Option<Sock>>,
    b: Option<&'s mut Option<Sock>>,
}

impl Ends<'_> {
    fn sock(&mut self, peer: Peer) -> Result<&mut Sock, ScenarioError> {
        let slot = match peer {
            Peer::A => self.a.as_deref_mut(),
            Peer::B => self.b.as_deref_mut(),
        };
        match slot {
            Some(Some(s)) => Ok(s),
            Some(None) => Err(ScenarioError(format!(
                "{peer} has no socket yet (B's comes from `B accept`)"
            ))),
            None => Err(ScenarioError(format!(
                "{peer} is blocked in a background call"
            ))),
        }
    }
}

/// What every step shares: where calls are recorded, B's listening socket, the SOCK_DESTROY helper when the
/// scenario destroys a socket, what the run's capture and trace have seen so far, and A's address once known.
struct Stage<'l> {
    rec: Recorder,
    listener: &'l Listener,
    destroyer: RefCell<Option<Destroyer>>,
    pair: RefCell<Option<Pair>>,
    seen: Seen,
    a_addr: Cell<Option<std::net::SocketAddr>>,
}

impl Stage<'_> {
    fn addrs(&self) -> wait::Addrs {
        wait::Addrs {
            a: self.a_addr.get(),
            b: self.listener.addr,
        }
    }
}

/// What was made before privileges were given up: B's bound port, the SOCK_DESTROY helper for a `destroy` step,
/// and a link scenario's namespaces with A's socket made inside A's; and the view of what the run's capture and
/// trace see as it plays (`wait B sends FIN`, `wait A kernel receives RST`).
pub struct Setup {
    pub listener: Listener,
    pub destroyer: Option<Destroyer>,
    pub net: Option<(Pair, Sock)>,
    pub rec: Recorder,
    pub seen: Seen,
}

/// Play `script` as `mode` on B's bound port.
pub fn play(mode: Mode, script: &Script, setup: Setup) -> Result<PairRun, ScenarioError> {
    let Setup {
        listener,
        destroyer,
        net,
        rec,
        seen,
    } = setup;
    let (pair, a) = match net {
        Some((pair, a)) => (Some(pair), a),
        None => (
            None,
            Sock::new(Peer::A, listener.addr.is_ipv6(), &rec)
                .map_err(|e| ScenarioError(format!("cannot create A's socket: {e}")))?,
        ),
    };
    let mut slots = (Some(a), None);
    let stage = Stage {
        rec: rec.clone(),
        listener: &listener,
        destroyer: RefCell::new(destroyer),
        pair: RefCell::new(pair),
        seen,
        a_addr: Cell::new(None),
    };
    let mut ends = Ends {
        a: Some(&mut slots.0),
        b: Some(&mut slots.1),
    };
    steps(&stage, &mut ends, &script.steps)
        .map_err(|e| ScenarioError(format!("mode {mode}, {e}")))?;
    let a_local = slots.0.as_ref().and_then(|a| a.local);
    let b_addr = listener.addr;
    let a_addr = a_local.unwrap_or(b_addr);
    settle(a_local, b_addr);
    let end_states = EndStates {
        a: sockdiag::state_of(a_addr, b_addr),
        b: sockdiag::state_of(b_addr, a_addr),
    };
    drop(slots);
    // the namespaces stay until the capture has its end marker (the live run releases them)
    if let Some(pair) = stage.pair.into_inner() {
        crate::os::netns::hold(pair);
    }
    Ok(PairRun {
        mode,
        a: a_addr,
        b: b_addr,
        calls: rec.take(),
        end_states,
    })
}

/// `line 7 (wait B unread 34): …`
fn at<T>(s: &At<T>, e: ScenarioError) -> ScenarioError {
    ScenarioError(format!("line {} ({}): {e}", s.line, s.text))
}

fn steps(stage: &Stage, ends: &mut Ends, list: &[At<Step>]) -> Done {
    let mut i = 0;
    while i < list.len() {
        let s = &list[i];
        match &s.item {
            Step::Call {
                peer,
                call: Call::Recv { max, .. },
                background: true,
            } => {
                // the parser made sure a `wait P returns` follows
                let join = Step::Wait(Wait::Returns(*peer));
                let end = i
                    + 1
                    + list[i + 1..]
                        .iter()
                        .position(|x| x.item == join)
                        .unwrap_or(list.len() - i - 1);
                background(stage, ends, *peer, *max, s, &list[i + 1..end])?;
                i = end + 1;
                continue;
            }
            Step::Call { peer, call, .. } => self::call(stage, ends, *peer, call),
            Step::Wait(w) => self::wait(stage, ends, w),
            Step::Sleep(d) => {
                proc::pause(*d);
                Ok(())
            }
            Step::Destroy(peer) => destroy(stage, ends, *peer),
            Step::Link(l) => match stage.pair.borrow_mut().as_mut() {
                Some(pair) => pair.link(l).map_err(|e| ScenarioError(e.to_string())),
                None => Err(ScenarioError(
                    "no network namespaces were made for this run".into(),
                )),
            },
        }
        .map_err(|e| at(s, e))?;
        i += 1;
    }
    Ok(())
}

fn call(stage: &Stage, ends: &mut Ends, peer: Peer, call: &Call) -> Done {
    match call {
        Call::Connect => {
            let to = stage.listener.addr;
            let a = ends.sock(peer)?;
            a.connect(to);
            stage.a_addr.set(a.local);
        }
        Call::ConnectSelf => {
            let to = stage.listener.addr;
            let a = ends.sock(peer)?;
            a.set_option(crate::os::socket::SockOpt::ReuseAddr(true));
            a.bind(to).map_err(|e| {
                ScenarioError(format!(
                    "A cannot bind B's port {to} (is the scenario `port closed`?): {e}"
                ))
            })?;
            a.connect(to);
            stage.a_addr.set(a.local);
        }
        Call::Accept => {
            wait::until(
                || "a connection in B's accept queue".into(),
                || stage.listener.has_pending(),
            )?;
            let b = stage.listener.accept(&stage.rec).map_err(|e| {
                ScenarioError(format!(
                    "B's accept() failed: {}",
                    errno_name(e.raw_os_error().unwrap_or(0))
                ))
            })?;
            match ends.b.as_deref_mut() {
                Some(slot) => *slot = Some(b),
                None => return Err(ScenarioError("B is blocked in a background call".into())),
            }
        }
        Call::Send(data) => {
            ends.sock(peer)?.send(data);
        }
        Call::Recv { max, until_end } => {
            let sock = ends.sock(peer)?;
            loop {
                let r = recv(sock, *max)?;
                if !until_end || r.ret() <= 0 {
                    break;
                }
            }
        }
        Call::Shutdown(how) => {
            ends.sock(peer)?.shutdown(*how);
        }
        Call::Close => {
            ends.sock(peer)?.close();
        }
        Call::CloseListener => {
            stage.listener.close(&stage.rec);
        }
        Call::SetSockOpt(opt) => {
            ends.sock(peer)?.set_option(*opt);
        }
    }
    Ok(())
}

/// SOCK_DESTROY of `peer`'s socket, through the helper started with the run.
fn destroy(stage: &Stage, ends: &mut Ends, peer: Peer) -> Done {
    let sock = ends.sock(peer)?;
    let mut helper = stage.destroyer.borrow_mut();
    let d = helper.as_mut().ok_or_else(|| {
        ScenarioError(
            "no SOCK_DESTROY helper was started for this run (one destroy per run)".into(),
        )
    })?;
    let done = sock.destroyed_by(d);
    // the helper serves one request
    *helper = None;
    done.map(|_| ())
        .map_err(|e| ScenarioError(format!("cannot destroy {peer}'s socket: {e}")))
}

/// recv() once there is something to read (bytes, the end of the stream or an error), so it cannot block.
fn recv(sock: &Sock, max: usize) -> Result<SocketCall, ScenarioError> {
    wait::until(
        || {
            format!(
                "something for {} to recv() (bytes, end of stream or an error; its socket is {:?})",
                sock.peer,
                sock.kernel_state()
            )
        },
        || sock.readable(),
    )?;
    Ok(sock.recv(max))
}

fn wait(stage: &Stage, ends: &mut Ends, w: &Wait) -> Done {
    match w {
        Wait::Sends { .. } | Wait::ZeroWindow { .. } | Wait::Kernel { .. } => {
            wait::on_view(w, &stage.seen, stage.addrs())
        }
        Wait::Unread { peer, bytes } => {
            let sock = ends.sock(*peer)?;
            wait::until(
                || {
                    format!(
                        "{bytes} bytes to be queued at {peer} (have {:?})",
                        sock.unread()
                    )
                },
                || sock.unread().is_some_and(|u| u as usize >= *bytes),
            )
        }
        Wait::State {
            peer,
            states,
            only_if,
        } => {
            if let Some((q, qs)) = only_if {
                let now = ends.sock(*q)?.kernel_state();
                if !now.is_some_and(|s| qs.contains(&s)) {
                    return Ok(());
                }
            }
            let sock = ends.sock(*peer)?;
            let names: Vec<&str> = states.iter().map(|s| s.linux_name()).collect();
            wait::until(
                || {
                    format!(
                        "{peer}'s socket to reach {} (is {:?})",
                        names.join(" or "),
                        sock.kernel_state()
                    )
                },
                || sock.kernel_state().is_some_and(|s| states.contains(&s)),
            )
        }
        Wait::Acked { peer } => {
            let sock = ends.sock(*peer)?;
            wait::until(
                || {
                    format!(
                        "{peer}'s bytes to be acknowledged (unacknowledged: {:?})",
                        sock.unacked()
                    )
                },
                || sock.unacked() == Some(0),
            )
        }
        Wait::Returns(p) => Err(ScenarioError(format!(
            "no call of {p} runs in the background"
        ))),
    }
}

/// `peer`'s recv(`max`) on its own thread; once it is asleep in the kernel, the `inner` steps (of the other peer),
/// then wait for the recv() to return.
fn background(
    stage: &Stage,
    ends: &mut Ends,
    peer: Peer,
    max: usize,
    s: &At<Step>,
    inner: &[At<Step>],
) -> Done {
    let (mine, mut others) = match peer {
        Peer::A => (
            ends.a.as_deref(),
            Ends {
                a: None,
                b: ends.b.as_deref_mut(),
            },
        ),
        Peer::B => (
            ends.b.as_deref(),
            Ends {
                a: ends.a.as_deref_mut(),
                b: None,
            },
        ),
    };
    let Some(Some(sock)) = mine else {
        return Err(at(s, ScenarioError(format!("{peer} has no socket here"))));
    };
    std::thread::scope(|scope| {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        scope.spawn(move || {
            let _ = tid_tx.send(proc::thread_id());
            let _ = done_tx.send(sock.recv(max));
        });
        let result = (|| {
            let tid = tid_rx
                .recv()
                .map_err(|_| at(s, ScenarioError(format!("{peer}'s thread did not start"))))?;
            wait::until(
                || format!("{peer} to block in recv()"),
                || proc::blocked_in_recv(tid),
            )
            .map_err(|e| at(s, e))?;
            steps(stage, &mut others, inner)?;
            // Block (not spin) until the recv() returns, so its thread gets the CPU at once.
            done_rx.recv_timeout(wait::CALL_LIMIT).map_err(|_| {
                at(
                    s,
                    ScenarioError(format!(
                        "{peer}'s recv() did not return after the steps below it"
                    )),
                )
            })
        })();
        if result.is_err() {
            // the thread may still sleep in recv(); the scope would wait for it forever. Wake it.
            sock.abort_blocked_recv();
        }
        result.map(|_| ())
    })
}

/// Wait until no socket of the pair is in a state that still owes a segment, so the capture can be ended.
fn settle(a: Option<std::net::SocketAddr>, b: std::net::SocketAddr) {
    let Some(a) = a else { return };
    let busy = |s: Option<TcpState>| {
        matches!(
            s,
            Some(
                TcpState::SynSent
                    | TcpState::SynReceived
                    | TcpState::FinWait1
                    | TcpState::Closing
                    | TcpState::LastAck
            )
        )
    };
    let _ = wait::until(
        || "the kernel to finish the connection".into(),
        || !busy(sockdiag::state_of(a, b)) && !busy(sockdiag::state_of(b, a)),
    );
}
