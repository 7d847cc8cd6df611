//! The door to the kernel: everything that makes a system call about sockets, packets or processes lives here,
//! so every stage behind it can be tested without privileges.

pub mod capture;
pub mod sockdiag;
pub mod socket;
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
