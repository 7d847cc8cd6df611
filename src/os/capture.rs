//! Live capture on the loopback device with libpcap: the one stage that needs capture rights.
//!
//! [`start`] opens `lo` filtered on B's port before the demo pair connects, and reads on its own thread;
//! [`LiveCapture::finish`] sends the end-of-capture marker (one UDP datagram to B's port) after the scenario and
//! stops once it is read: frames reach the packet socket in the order the kernel transmits them, so once the marker
//! is in, every segment sent before it is in too. The marker's content, how it is sent and how it is recognised all
//! live in this file. A marker that never comes ends the capture 2 s after `finish` (`complete: false`).
//!
//! Errors are typed: [`CaptureError`] before the capture runs (the caller may retry without capture),
//! [`FinishError`] once it ran. Nothing here panics on what the kernel or libpcap returns.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::model::frame::RawFrame;
use crate::model::segment::{Segment, TimestampNs};
use crate::wire::decode::{self, Skip};
use crate::wire::link::LinkType;

/// What the capture returns: the TCP segments it saw, and how complete it knows itself to be.
#[derive(Debug, Clone)]
pub struct Captured {
    pub segments: Vec<Segment>,
    /// The frames the segments were decoded from, in the same order, and their link type (LINKTYPE_*).
    pub frames: Vec<RawFrame>,
    pub linktype: u32,
    /// Frames that matched the filter but did not decode as TCP (other than the end marker), with the reason.
    pub undecoded: Vec<Skip>,
    /// Packets libpcap says the kernel dropped (buffer full) or the interface dropped.
    pub dropped: u32,
    /// False when the end marker never arrived before the deadline: the capture may be missing segments.
    pub complete: bool,
    /// True when libpcap honoured our request for nanosecond timestamps.
    pub nanosecond: bool,
}

#[derive(Debug)]
pub enum CaptureError {
    /// No right to open a packet socket.
    NoPermission(String),
    /// Anything else libpcap refused (no such device, bad filter…).
    Pcap(String),
    /// The link type of the device is one we do not decode.
    UnsupportedLink(i32),
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureError::NoPermission(detail) => write!(
                f,
                "capturing on the loopback device needs CAP_NET_RAW ({detail}): run it with sudo, or give the \
                 binary the capability once with `sudo setcap cap_net_raw=eip \"$(command -v \
                 tcp-close-watch)\"`; or add --no-capture to see the socket calls alone"
            ),
            CaptureError::Pcap(e) => write!(f, "libpcap: {e}"),
            CaptureError::UnsupportedLink(n) => {
                write!(
                    f,
                    "the capture device has link type {n}, which tcp-close-watch cannot decode"
                )
            }
        }
    }
}

impl std::error::Error for CaptureError {}

/// A capture that started but could not be finished.
#[derive(Debug)]
pub enum FinishError {
    /// The end-of-capture marker could not be sent.
    Marker(std::io::Error),
    /// libpcap failed while reading packets.
    Read(pcap::Error),
    /// libpcap could not say how many packets were dropped.
    Stats(pcap::Error),
    /// The capture thread panicked.
    Panicked,
}

impl std::fmt::Display for FinishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FinishError::Marker(e) => write!(f, "could not send the end-of-capture marker: {e}"),
            FinishError::Read(e) => write!(f, "reading the capture failed: {e}"),
            FinishError::Stats(e) => write!(f, "libpcap statistics: {e}"),
            FinishError::Panicked => f.write_str("the capture thread panicked"),
        }
    }
}

impl std::error::Error for FinishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FinishError::Marker(e) => Some(e),
            FinishError::Read(e) | FinishError::Stats(e) => Some(e),
            FinishError::Panicked => None,
        }
    }
}

unsafe extern "C" {
    fn pcap_get_tstamp_precision(p: *mut std::ffi::c_void) -> std::ffi::c_int;
}

/// A capture running on its own thread.
pub struct LiveCapture {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<Captured, FinishError>>,
    /// B's address: where the end marker goes.
    b: SocketAddr,
}

/// The loopback device name on Linux.
pub const LOOPBACK: &str = "lo";

/// The BPF filter for one run: the TCP segments to and from `port`, and the UDP end marker sent to it.
pub fn filter_for_port(port: u16) -> String {
    format!("tcp port {port} or udp dst port {port}")
}

/// The end-of-capture marker's payload.
const MARKER: &[u8] = b"tcp-close-watch: end of capture";

/// Send the end marker to B's port, from a port of our own on the same loopback address.
fn send_marker(b: SocketAddr) -> std::io::Result<()> {
    let any = if b.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    UdpSocket::bind(any)?.send_to(MARKER, b).map(|_| ())
}

/// Capture what goes to and from B's port on the loopback device. Returns once the capture is live, so nothing
/// sent afterwards is missed.
pub fn start(b: SocketAddr) -> Result<LiveCapture, CaptureError> {
    start_on(LOOPBACK, &filter_for_port(b.port()), b)
}

fn start_on(device: &str, filter: &str, b: SocketAddr) -> Result<LiveCapture, CaptureError> {
    let map = |e: pcap::Error| {
        let text = e.to_string();
        if text.contains("ermission") || text.contains("EPERM") || text.contains("not permitted") {
            CaptureError::NoPermission(text)
        } else {
            CaptureError::Pcap(text)
        }
    };
    let mut cap = pcap::Capture::from_device(device)
        .map_err(map)?
        .immediate_mode(true)
        .timeout(5)
        .snaplen(65535)
        .buffer_size(4 << 20)
        .precision(pcap::Precision::Nano)
        .open()
        .map_err(map)?;
    cap.filter(filter, true).map_err(map)?;
    let dlt = cap.get_datalink().0;
    let link = LinkType::from_number(dlt as u32).ok_or(CaptureError::UnsupportedLink(dlt))?;
    // SAFETY: the handle is open; libpcap only reads its own field.
    let nanosecond = unsafe { pcap_get_tstamp_precision(cap.as_ptr().cast()) } == 1;
    let stop = Arc::new(AtomicBool::new(false));
    let stop_seen = Arc::clone(&stop);
    let linktype = dlt as u32;
    let thread =
        std::thread::spawn(move || read_until_marker(cap, link, linktype, nanosecond, &stop_seen));
    Ok(LiveCapture { stop, thread, b })
}

fn read_until_marker(
    mut cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    linktype: u32,
    nanosecond: bool,
    stop: &AtomicBool,
) -> Result<Captured, FinishError> {
    let mut segments = Vec::new();
    let mut frames = Vec::new();
    let mut undecoded = Vec::new();
    let mut complete = false;
    let mut deadline: Option<Instant> = None;
    loop {
        if deadline.is_none() && stop.load(Ordering::Acquire) {
            // the marker is on its way: it must arrive soon, or something is wrong
            deadline = Some(Instant::now() + Duration::from_secs(2));
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            break;
        }
        match cap.next_packet() {
            Ok(p) => {
                let ts = timestamp(p.header.ts, nanosecond);
                match decode::decode(link, ts, p.data) {
                    Ok(seg) => {
                        segments.push(seg);
                        frames.push(RawFrame {
                            ts,
                            data: p.data.to_vec(),
                            orig_len: p.header.len,
                        });
                    }
                    Err(Skip::NotTcp) => {
                        // the UDP end marker: everything sent before it has been read
                        complete = true;
                        break;
                    }
                    Err(other) => undecoded.push(other),
                }
            }
            Err(pcap::Error::TimeoutExpired) => continue,
            Err(e) => return Err(FinishError::Read(e)),
        }
    }
    let stats = cap.stats().map_err(FinishError::Stats)?;
    Ok(Captured {
        segments,
        frames,
        linktype,
        undecoded,
        dropped: stats.dropped + stats.if_dropped,
        complete,
        nanosecond,
    })
}

fn timestamp(tv: libc::timeval, nanosecond: bool) -> TimestampNs {
    let frac = tv.tv_usec;
    tv.tv_sec * 1_000_000_000 + if nanosecond { frac } else { frac * 1000 }
}

impl LiveCapture {
    /// Send the end marker, stop once it is read (or 2 s later), and hand back what was captured.
    pub fn finish(self) -> Result<Captured, FinishError> {
        self.stop.store(true, Ordering::Release);
        send_marker(self.b).map_err(FinishError::Marker)?;
        self.thread.join().map_err(|_| FinishError::Panicked)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_by_precision() {
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 500,
        };
        assert_eq!(timestamp(tv, true), 2_000_000_500);
        assert_eq!(timestamp(tv, false), 2_000_500_000);
    }

    #[test]
    fn finish_errors_name_what_failed_and_keep_the_cause() {
        let e = FinishError::Marker(std::io::Error::from_raw_os_error(libc::ENETUNREACH));
        assert!(
            e.to_string()
                .starts_with("could not send the end-of-capture marker: ")
        );
        assert!(std::error::Error::source(&e).is_some());
        let e = FinishError::Read(pcap::Error::PcapError("gone".into()));
        assert_eq!(
            e.to_string(),
            "reading the capture failed: libpcap error: gone"
        );
        assert_eq!(
            FinishError::Panicked.to_string(),
            "the capture thread panicked"
        );
    }

    #[test]
    fn filter_names_the_port() {
        assert_eq!(filter_for_port(8080), "tcp port 8080 or udp dst port 8080");
    }
}
