//! The scenarios, one function each, written as the two programs would be: A's calls and B's calls in the order
//! they happen, with a bounded wait wherever one side must let the other get somewhere first.

use std::sync::mpsc;

use crate::model::calls::{Peer, SocketCall};
use crate::model::run::{EndStates, Mode, PairRun};
use crate::model::tcp_state::TcpState;
use crate::os::socket::{Listener, Recorder, Sock};
use crate::os::{proc, sockdiag};
use crate::scenario::wait::{self, ScenarioError};

/// A's message in the single-message modes: long enough that reading one byte leaves plenty unread.
pub const MESSAGE: &[u8] = b"Hello B! Please read all of this.\n";
const RECV_MAX: usize = 64;

struct Pair {
    rec: Recorder,
    listener: Listener,
    a: Sock,
    b: Option<Sock>,
}

type Step = Result<(), ScenarioError>;

fn failed(what: &str, call: &SocketCall) -> ScenarioError {
    ScenarioError(format!("{what}: {} {}", call.call, call.result_text()))
}

impl Pair {
    /// A connects, B accepts.
    fn connect(&mut self) -> Step {
        let call = self.a.connect(self.listener.addr);
        if call.errno().is_some() {
            return Err(failed("A could not connect", &call));
        }
        let b = self.listener.accept(&self.rec).map_err(|e| {
            ScenarioError(format!(
                "B's accept() failed: {}",
                crate::model::calls::errno_name(e.raw_os_error().unwrap_or(0))
            ))
        })?;
        self.b = Some(b);
        Ok(())
    }
}

/// Wait until `sock` has at least `n` bytes queued to read.
fn until_unread(sock: &Sock, n: usize) -> Step {
    wait::until(
        || {
            format!(
                "{} bytes to be queued at {} (have {:?})",
                n,
                sock.peer,
                sock.unread()
            )
        },
        || sock.unread().is_some_and(|u| u as usize >= n),
    )
}

/// Wait until the kernel has moved `sock` to `state` (a FIN or an RST from the other side arrived).
fn until_state(sock: &Sock, state: TcpState) -> Step {
    wait::until(
        || {
            format!(
                "{}'s socket to reach {state} (is {:?})",
                sock.peer,
                sock.kernel_state()
            )
        },
        || sock.kernel_state() == Some(state),
    )
}

/// Run `a.recv()` on its own thread and, once it is really asleep in the kernel, do `b_steps`; return what the
/// recv() returned. This is how A is "blocked in recv()" while B acts.
fn while_a_blocked_in_recv(
    a: &Sock,
    b_steps: impl FnOnce() -> Step,
) -> Result<SocketCall, ScenarioError> {
    std::thread::scope(|s| {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        s.spawn(move || {
            let _ = tid_tx.send(proc::thread_id());
            let _ = done_tx.send(a.recv(RECV_MAX));
        });
        let result = (|| {
            let tid = tid_rx
                .recv()
                .map_err(|_| ScenarioError("A's thread did not start".into()))?;
            wait::until(
                || "A to block in recv()".into(),
                || proc::blocked_in_recv(tid),
            )?;
            b_steps()?;
            // Block (not spin) until A's recv() returns, so A's thread gets the CPU at once.
            done_rx
                .recv_timeout(wait::LIMIT)
                .map_err(|_| ScenarioError("A's recv() did not return after B's steps".into()))
        })();
        if result.is_err() {
            // A's thread may still sleep in recv(); the scope would wait for it forever. Wake it.
            a.abort_blocked_recv();
        }
        result
    })
}

fn is_prime(n: u32) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// Numbers as A sends them: fixed width, one per line, so B can recv() exactly one at a time.
fn numbers(ns: &[u32]) -> Vec<u8> {
    ns.iter()
        .flat_map(|n| format!("{n:04}\n").into_bytes())
        .collect()
}
const NUMBER_LEN: usize = 5;

// The scenarios ---------------------------------------------------------------------------------------------------

/// The opening of abrupt and shutdown: A sends its message, B reads the first byte of it once all is queued.
fn a_sends_b_reads_one(p: &mut Pair) -> Step {
    p.connect()?;
    p.a.send(MESSAGE);
    let b = p.b.as_mut().expect("connected");
    until_unread(b, MESSAGE.len())?;
    b.recv(1);
    Ok(())
}

fn abrupt(p: &mut Pair) -> Step {
    a_sends_b_reads_one(p)?;
    let b = p.b.as_mut().expect("connected");
    while_a_blocked_in_recv(&p.a, || {
        b.close();
        Ok(())
    })?;
    p.a.close();
    Ok(())
}

fn shutdown(p: &mut Pair) -> Step {
    a_sends_b_reads_one(p)?;
    let b = p.b.as_mut().expect("connected");
    while_a_blocked_in_recv(&p.a, || {
        b.shutdown_write();
        Ok(())
    })?;
    b.close();
    // If B's close() sent a reset (its socket is gone at once), A closes only once that reset has arrived, so A's
    // own close cannot race it.
    if b.kernel_state() == Some(TcpState::Closed) {
        until_state(&p.a, TcpState::Closed)?;
    }
    p.a.close();
    Ok(())
}

fn drain(p: &mut Pair) -> Step {
    p.connect()?;
    p.a.send(MESSAGE);
    p.a.shutdown_write();
    let b = p.b.as_mut().expect("connected");
    until_state(b, TcpState::CloseWait)?;
    let reply = while_a_blocked_in_recv(&p.a, || {
        b.recv(1);
        // drain: read until A's end of stream
        loop {
            let r = b.recv(RECV_MAX);
            if r.ret() <= 0 {
                break;
            }
        }
        b.send(b"OK, read it all\n");
        Ok(())
    })?;
    if reply.ret() <= 0 {
        return Err(failed("A expected B's answer", &reply));
    }
    b.close();
    p.a.recv(RECV_MAX);
    p.a.close();
    Ok(())
}

fn linger0(p: &mut Pair) -> Step {
    p.connect()?;
    p.a.send(MESSAGE);
    let b = p.b.as_mut().expect("connected");
    until_unread(b, MESSAGE.len())?;
    b.recv(RECV_MAX);
    while_a_blocked_in_recv(&p.a, || {
        b.set_linger_zero();
        b.close();
        Ok(())
    })?;
    p.a.close();
    Ok(())
}

fn half_close(p: &mut Pair) -> Step {
    p.connect()?;
    p.a.send(MESSAGE);
    p.a.shutdown_write();
    // A's sending side is closed now; its receiving side is not.
    p.a.send(b"one more thing");
    let b = p.b.as_mut().expect("connected");
    until_state(b, TcpState::CloseWait)?;
    while_a_blocked_in_recv(&p.a, || {
        loop {
            let r = b.recv(RECV_MAX);
            if r.ret() <= 0 {
                break;
            }
        }
        b.send(b"reply after your FIN\n");
        Ok(())
    })?;
    b.close();
    p.a.recv(RECV_MAX);
    p.a.close();
    Ok(())
}

fn write_after_close(p: &mut Pair) -> Step {
    p.connect()?;
    let b = p.b.as_mut().expect("connected");
    b.close();
    until_state(&p.a, TcpState::CloseWait)?;
    let first = p.a.send(b"are you there?\n");
    if first.errno().is_some() {
        return Err(failed(
            "A's first send after B's close was expected to succeed",
            &first,
        ));
    }
    // B's socket is gone from its application: its kernel answers the data with RST.
    until_state(&p.a, TcpState::Closed)?;
    p.a.send(b"hello?\n");
    p.a.recv(RECV_MAX);
    p.a.close();
    Ok(())
}

/// The primes protocol: A sends its numbers; B reads them one at a time, answers ERROR at the first non-prime or
/// OK after `expect` primes, and closes at once — whatever is still unread. A reads B's answer only once B's
/// closing segment (FIN, or RST) has reached A's socket: that shows what the textbook asks, whether an answer
/// sent just before a reset still reaches the application, the same way every time.
fn primes(p: &mut Pair, sent: &[u32], expect: usize) -> Step {
    p.connect()?;
    let data = numbers(sent);
    p.a.send(&data);
    let b = p.b.as_mut().expect("connected");
    until_unread(b, data.len())?;
    let mut answer: &[u8] = b"OK\n";
    for _ in 0..expect {
        let r = b.recv(NUMBER_LEN);
        let n: Option<u32> = std::str::from_utf8(r.data())
            .ok()
            .and_then(|s| s.trim().parse().ok());
        if !n.is_some_and(is_prime) {
            answer = b"ERROR\n";
            break;
        }
    }
    b.send(answer);
    b.close();
    wait::until(
        || format!("B's FIN or RST to reach A (A is {:?})", p.a.kernel_state()),
        || {
            matches!(
                p.a.kernel_state(),
                Some(TcpState::CloseWait | TcpState::Closed)
            )
        },
    )?;
    // A reads its answer, then on until the connection ends, as the textbook client would report it.
    if p.a.recv(RECV_MAX).ret() > 0 {
        p.a.recv(RECV_MAX);
    }
    p.a.close();
    Ok(())
}

fn refused(p: &mut Pair) -> Step {
    let call = p.a.connect(p.listener.addr);
    if call.errno().is_none() {
        return Err(failed(
            "connect to a port without a listener was expected to fail",
            &call,
        ));
    }
    p.a.close();
    Ok(())
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

pub fn play(mode: Mode, listener: Listener) -> Result<PairRun, ScenarioError> {
    let rec = Recorder::default();
    let v6 = listener.addr.is_ipv6();
    let a = Sock::new(Peer::A, v6, &rec)
        .map_err(|e| ScenarioError(format!("cannot create A's socket: {e}")))?;
    let mut p = Pair {
        rec: rec.clone(),
        listener,
        a,
        b: None,
    };
    let result = match mode {
        Mode::Abrupt => abrupt(&mut p),
        Mode::Shutdown => shutdown(&mut p),
        Mode::Drain => drain(&mut p),
        Mode::Linger0 => linger0(&mut p),
        Mode::HalfClose => half_close(&mut p),
        Mode::WriteAfterClose => write_after_close(&mut p),
        Mode::PrimesOk => primes(&mut p, &[2, 3, 5, 7, 11], 5),
        Mode::PrimesBad => primes(&mut p, &[2, 4, 5, 7, 11], 5),
        Mode::PrimesSix => primes(&mut p, &[2, 3, 5, 7, 11, 13], 5),
        Mode::Refused => refused(&mut p),
    };
    result.map_err(|e| ScenarioError(format!("mode {mode}: {e}")))?;
    let b_addr = p.listener.addr;
    let a_addr = p.a.local.unwrap_or(b_addr);
    settle(p.a.local, b_addr);
    let end_states = EndStates {
        a: sockdiag::state_of(a_addr, b_addr),
        b: sockdiag::state_of(b_addr, a_addr),
    };
    Ok(PairRun {
        mode,
        a: a_addr,
        b: b_addr,
        calls: rec.take(),
        end_states,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes_are_primes() {
        let found: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(found, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
    }

    #[test]
    fn numbers_are_fixed_width() {
        assert_eq!(numbers(&[2, 11]), b"0002\n0011\n");
        assert_eq!(numbers(&[7]).len(), NUMBER_LEN);
    }
}
