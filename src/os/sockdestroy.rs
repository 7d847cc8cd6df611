//! SOCK_DESTROY through sock_diag (what `ss -K` does), for a run that has given up its privileges.
//!
//! The kernel checks CAP_NET_ADMIN when the request is made, and a live run gives up every capability before it
//! plays. So a [`Destroyer`] is started while the process still has its rights: a small process (`/bin/sh`
//! running `ss -K`) that reads exactly one line from its standard input — the two ends of one TCP socket —
//! destroys that socket and nothing else, writes how many sockets the kernel destroyed, and ends. It cannot be
//! asked anything more: a second request, any text that is not two addresses with ports, or its input closing
//! (the run ended, failed or was killed, SIGKILL included) makes it end without touching anything.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The helper: validates the one line, then asks `ss` to destroy the socket with exactly that local and remote
/// end, printing the number of sockets it destroyed (`ss -K` lists each one it could destroy).
const SCRIPT: &str = r#"IFS=' ' read -r src dst rest || exit 0
[ -z "$rest" ] || { echo refused; exit 1; }
for a in "$src" "$dst"; do
  case "$a" in ''|*[!0-9a-fA-F.:\[\]]*) echo refused; exit 1;; esac
done
ss -K -H -n -t state all src "$src" dst "$dst" 2>/dev/null | wc -l"#;

/// A helper process that may destroy one socket, once.
pub struct Destroyer {
    child: Child,
    input: Option<ChildStdin>,
    output: Option<BufReader<ChildStdout>>,
}

/// How `ss` writes an end: `127.0.0.1:80`, `[::1]:80`.
fn end(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

impl Destroyer {
    /// Start the helper (while this process still has CAP_NET_ADMIN: it keeps the rights it was started with).
    pub fn start() -> std::io::Result<Destroyer> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let input = child.stdin.take();
        let output = child.stdout.take().map(BufReader::new);
        Ok(Destroyer {
            child,
            input,
            output,
        })
    }

    /// Destroy the TCP socket whose own end is `local` and whose peer is `remote`: the number of sockets the
    /// kernel destroyed (1, or 0 when it refused: no CAP_NET_ADMIN when the helper started, a kernel without
    /// CONFIG_INET_DIAG_DESTROY, or no such socket). Only once: the helper ends after the first request.
    pub fn destroy(&mut self, local: SocketAddr, remote: SocketAddr) -> std::io::Result<u32> {
        let gone = || std::io::Error::other("the SOCK_DESTROY helper was used already");
        let mut input = self.input.take().ok_or_else(gone)?;
        let mut output = self.output.take().ok_or_else(gone)?;
        writeln!(input, "{} {}", end(local), end(remote))?;
        drop(input);
        let mut line = String::new();
        output.read_line(&mut line)?;
        let _ = self.child.wait();
        line.trim().parse().map_err(|_| {
            std::io::Error::other(format!(
                "the SOCK_DESTROY helper answered {:?} (is `ss` from iproute2 installed?)",
                line.trim()
            ))
        })
    }
}

impl Drop for Destroyer {
    fn drop(&mut self) {
        // its input closes: it reads nothing and ends
        drop(self.input.take());
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_serves_one_request_and_destroys_nothing_that_is_not_there() {
        let mut d = Destroyer::start().expect("/bin/sh starts");
        // port 1 on loopback: no such connection, whatever our rights
        let nobody: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(d.destroy(nobody, nobody).unwrap(), 0);
        assert!(d.destroy(nobody, nobody).is_err(), "a second request");
    }

    #[test]
    fn ends_are_written_as_ss_reads_them() {
        assert_eq!(end("127.0.0.1:80".parse().unwrap()), "127.0.0.1:80");
        assert_eq!(end("[::1]:80".parse().unwrap()), "[::1]:80");
    }
}
