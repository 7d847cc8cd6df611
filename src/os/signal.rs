//! A stop request from the user: SIGINT (Ctrl-C) or SIGTERM set a flag that a long-running command (`watch`) looks
//! at between reads, so it can close its capture and trace instance, print what it holds and end cleanly. The
//! handler only stores to an atomic (async-signal-safe).
//!
//! Installing it before a trace starts also tells `os::tracefs` that the program handles these signals itself
//! (its own cleanup handler is installed only for signals left at their default).

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal that asked to stop, 0 while none did.
static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop(sig: libc::c_int) {
    STOP.store(sig, Ordering::SeqCst);
}

/// Catch SIGINT and SIGTERM from now on.
pub fn catch_stop() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction with structs we own; the handler stores to an atomic only.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
            act.sa_flags = 0;
            libc::sigemptyset(&mut act.sa_mask);
            if libc::sigaction(sig, &act, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The signal that asked to stop (SIGINT, SIGTERM), if one did.
pub fn stop_requested() -> Option<i32> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// The signal's name, for a line saying why the watch stopped.
pub fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
