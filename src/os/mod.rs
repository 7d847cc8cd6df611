//! The door to the kernel: everything that makes a system call about sockets, packets or processes lives here,
//! so every stage behind it can be tested without privileges.
//!
//! `capture` (libpcap on `lo`, ended by a marker datagram), `socket` (the pair's recorded socket calls, stamped by
//! the clock libpcap uses), `sockdiag` (the socket table: the state of a closed socket), `sockopt` (the options and shutdown directions a
//! scenario sets), `proc` (this process's
//! threads: is one asleep in recv()?), and the kernel's release below. The scenario plays the pair with them; the
//! live run reaches them only through its one door (`Door` in pipeline's live run), which a replay can stand in
//! for. Uses `model` and `wire` only; returns errors, never panics on what the kernel answers.

pub mod capture;
pub mod netns;
pub mod privilege;
pub mod proc;
pub mod procmap;
pub mod signal;
pub mod sockdestroy;
pub mod sockdiag;
pub mod socket;
pub mod sockopt;
pub mod tracefs;

/// The running kernel's release (`uname -r`), for saying what this kernel did.
pub fn kernel_release() -> String {
    // SAFETY: uname fills a struct we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    format!("Linux {}", String::from_utf8_lossy(&bytes))
}
