//! Finding tracefs: where it is mounted, or mounting it where the kernel documents it.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use super::error::TraceError;

/// Where tracefs lives by convention since Linux 4.1.
pub const DEFAULT_ROOT: &str = "/sys/kernel/tracing";

/// The tracefs mount point: the first tracefs in the mount table, else the old debugfs path, else
/// [`DEFAULT_ROOT`] after mounting it there.
pub fn tracefs_root() -> Result<PathBuf, TraceError> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    if let Some(root) = tracefs_in_mounts(&mounts) {
        return Ok(root);
    }
    let legacy = Path::new("/sys/kernel/debug/tracing");
    if legacy.join("instances").is_dir() {
        return Ok(legacy.to_path_buf());
    }
    mount_tracefs(Path::new(DEFAULT_ROOT))?;
    Ok(PathBuf::from(DEFAULT_ROOT))
}

/// The mount point of the first tracefs in a `/proc/self/mounts` text.
pub fn tracefs_in_mounts(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let (_dev, dir, fstype) = (f.next()?, f.next()?, f.next()?);
        // The mount table escapes spaces in paths as \040.
        (fstype == "tracefs").then(|| PathBuf::from(dir.replace("\\040", " ")))
    })
}

fn mount_tracefs(at: &Path) -> Result<(), TraceError> {
    let target =
        CString::new(at.as_os_str().as_encoded_bytes()).map_err(|_| TraceError::NoTracefs {
            detail: "mount point has a NUL byte".into(),
        })?;
    // SAFETY: every pointer is a NUL-terminated string that outlives the call; no data argument.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    Err(match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => TraceError::NotPermitted {
            path: at.to_path_buf(),
        },
        Some(libc::ENODEV) => TraceError::NoTracefs {
            detail: "this kernel has no tracefs (CONFIG_TRACING off)".into(),
        },
        _ => TraceError::NoTracefs {
            detail: format!("mount -t tracefs nodev {}: {err}", at.display()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_table_names_tracefs() {
        let t = "sysfs /sys sysfs rw 0 0\nnodev /sys/kernel/tracing tracefs rw,relatime 0 0\n";
        assert_eq!(
            tracefs_in_mounts(t),
            Some(PathBuf::from("/sys/kernel/tracing"))
        );
        assert_eq!(tracefs_in_mounts("proc /proc proc rw 0 0\n"), None);
        assert_eq!(
            tracefs_in_mounts("nodev /a\\040b tracefs rw 0 0"),
            Some(PathBuf::from("/a b"))
        );
    }
}
