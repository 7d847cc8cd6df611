//! The scenarios shipped with the tool: the files in scenarios/, built into the binary.

use crate::model::run::Mode;

/// The text of `mode`'s scenario: the shipped file, or the one a file-mode carries.
pub fn text(mode: Mode) -> &'static str {
    match mode {
        Mode::Abrupt => include_str!("../../scenarios/abrupt.scenario"),
        Mode::Shutdown => include_str!("../../scenarios/shutdown.scenario"),
        Mode::Drain => include_str!("../../scenarios/drain.scenario"),
        Mode::Linger0 => include_str!("../../scenarios/linger0.scenario"),
        Mode::HalfClose => include_str!("../../scenarios/half-close.scenario"),
        Mode::WriteAfterClose => include_str!("../../scenarios/write-after-close.scenario"),
        Mode::PrimesOk => include_str!("../../scenarios/primes-ok.scenario"),
        Mode::PrimesBad => include_str!("../../scenarios/primes-bad.scenario"),
        Mode::PrimesSix => include_str!("../../scenarios/primes-six.scenario"),
        Mode::Refused => include_str!("../../scenarios/refused.scenario"),
        Mode::Linger2Abort => include_str!("../../scenarios/linger2-abort.scenario"),
        Mode::ShutdownRead => include_str!("../../scenarios/shutdown-read.scenario"),
        Mode::AcceptQueueReset => include_str!("../../scenarios/accept-queue-reset.scenario"),
        Mode::SelfConnect => include_str!("../../scenarios/self-connect.scenario"),
        Mode::SockDestroy => include_str!("../../scenarios/sock-destroy.scenario"),
        Mode::KeepaliveDeadPeer => include_str!("../../scenarios/keepalive-dead-peer.scenario"),
        Mode::UserTimeout => include_str!("../../scenarios/user-timeout.scenario"),
        Mode::ZeroWindow => include_str!("../../scenarios/zero-window.scenario"),
        Mode::File(f) => &f.text,
    }
}
