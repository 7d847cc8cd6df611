//! The files a command writes (`-o`, `--write`): each made as a temporary file beside its target and renamed over
//! it only when the command succeeded, so a failed command leaves an existing file as it was and creates none. A
//! target that is one of the inputs is refused before anything is read. A target that exists and is no regular file
//! (`/dev/null`, a FIFO), or is named through /dev or /proc (`/dev/stdout`), is written directly: there is nothing
//! to rename over, or the file is the caller's descriptor.
//!
//! As root the command gives up root before it writes a byte, and may then no longer rename in the target's
//! folder: the renaming is left to `os::privilege::Finisher`, forked before the command gives up its privileges.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tcp_close_watch::os::privilege::{self, Finisher};

use crate::Failure;

/// A temporary file and the target it will be renamed over.
struct Pending {
    temp: PathBuf,
    target: PathBuf,
}

/// The files of one command, not in place yet.
#[derive(Default)]
pub struct Outputs {
    pending: Vec<Pending>,
    finisher: Option<Finisher>,
}

impl Outputs {
    /// The file to write for `path` (given as `option`, for messages), refused when it is one of `inputs` or
    /// another output of this command.
    pub fn create(
        &mut self,
        path: &Path,
        option: &str,
        inputs: &[String],
    ) -> Result<File, Failure> {
        let cannot = |e: &dyn std::fmt::Display| {
            Failure::new(format!("{option} {}: cannot write it: {e}", path.display()))
        };
        let existing = std::fs::metadata(path).ok();
        if let Some(meta) = &existing {
            for input in inputs {
                let name = if input == "-" { "/dev/stdin" } else { input };
                if std::fs::metadata(name)
                    .is_ok_and(|m| (m.dev(), m.ino()) == (meta.dev(), meta.ino()))
                {
                    return Err(Failure::new(format!(
                        "{option} {} is the input {input}: it would be overwritten; write the output elsewhere",
                        path.display()
                    )));
                }
            }
            // a device or FIFO, or a name for a descriptor (/dev/stdout, /proc/self/fd/N) whose file is the
            // caller's to keep: written in place, as it always was
            if !meta.is_file() || path.starts_with("/dev") || path.starts_with("/proc") {
                return OpenOptions::new()
                    .write(true)
                    .truncate(meta.is_file())
                    .open(path)
                    .map_err(|e| cannot(&e));
            }
        }
        let target = match &existing {
            // over the file itself, not a symbolic link to it
            Some(_) => path.canonicalize().map_err(|e| cannot(&e))?,
            None => {
                let name = path.file_name().ok_or_else(|| cannot(&"not a file name"))?;
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                dir.canonicalize().map_err(|e| cannot(&e))?.join(name)
            }
        };
        if self.pending.iter().any(|p| p.target == target) {
            return Err(Failure::new(format!(
                "{option} {} is written already by another option",
                path.display()
            )));
        }
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let temp = target.with_file_name(format!(
            ".{name}.{}-{}.tcw-tmp",
            std::process::id(),
            self.pending.len()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(existing.as_ref().map_or(0o666, |m| m.mode() & 0o7777))
            .open(&temp)
            .map_err(|e| cannot(&e))?;
        if let Some(meta) = &existing {
            // the replaced file's owner and mode are kept (when root may give them)
            if privilege::is_root() {
                let _ = std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()));
            }
            let _ = file.set_permissions(meta.permissions());
        }
        self.pending.push(Pending { temp, target });
        Ok(file)
    }

    /// Call before the command gives up its privileges: as root, fork the process that will rename the files.
    pub fn ready(&mut self) -> Result<(), Failure> {
        if !self.pending.is_empty() && privilege::is_root() {
            let pairs: Vec<(PathBuf, PathBuf)> = self
                .pending
                .iter()
                .map(|p| (p.temp.clone(), p.target.clone()))
                .collect();
            self.finisher = Some(Finisher::start(&pairs).map_err(|e| Failure::new(e.to_string()))?);
        }
        Ok(())
    }

    /// The command succeeded: every file goes in place.
    pub fn commit(mut self) -> Result<(), Failure> {
        let pending = std::mem::take(&mut self.pending);
        let failed = |target: &Path, e: std::io::Error| {
            Failure::new(format!("cannot put {} in place: {e}", target.display()))
        };
        if let Some(finisher) = self.finisher.take() {
            let last = pending.last().map(|p| p.target.clone()).unwrap_or_default();
            return finisher.commit().map_err(|e| failed(&last, e));
        }
        for (i, p) in pending.iter().enumerate() {
            if let Err(e) = std::fs::rename(&p.temp, &p.target) {
                for rest in &pending[i..] {
                    let _ = std::fs::remove_file(&rest.temp);
                }
                return Err(failed(&p.target, e));
            }
        }
        Ok(())
    }
}

impl Drop for Outputs {
    /// Not committed: the temporary files go, the targets stay as they were.
    fn drop(&mut self) {
        match self.finisher.take() {
            Some(f) => f.abort(),
            None => {
                for p in &self.pending {
                    let _ = std::fs::remove_file(&p.temp);
                }
            }
        }
    }
}
