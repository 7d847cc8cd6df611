//! Live capture on the loopback device with libpcap: the one stage that needs capture rights.
//!
//! [`start`] opens `lo` filtered on B's port before the demo pair connects, and reads on its own thread;
//! [`LiveCapture::finish`] sends the end-of-capture marker (one UDP datagram to B's port, carrying a random token
//! drawn for the run, so no other process's datagram can end the capture) after the scenario and stops once it is
//! read: frames reach the packet socket in the order the kernel transmits them, so once the marker is in, every
//! segment sent before it is in too. The marker's content, how it is sent and how it is recognised all live in this
//! file.
//!
//! `finish` returns within [`MARKER_WAIT`] (plus a poll slice) whatever happens on the wire: libpcap is
//! non-blocking and the thread waits in poll(2) with its deadline. A marker that never comes ends the capture
//! incomplete (`complete: false`); packets the kernel dropped because the ring was full are counted for this run
//! (`dropped`). Either way [`Captured::may_miss_segments`] says the timeline cannot be trusted to be whole.
//!
//! Errors are typed: [`CaptureError`] before the capture runs (the caller may retry without capture),
//! [`FinishError`] once it ran. Nothing here panics on what the kernel or libpcap returns.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::model::frame::RawFrame;
use crate::model::seen::Seen;
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
    /// Packets the kernel dropped from this capture's ring (it was full) while the run played: segments may be
    /// missing. (Drops before the filter applied were of other traffic and are not counted; neither are the
    /// device's own receive drops, which lose no frame from the capture: it saw them sent.)
    pub dropped: u32,
    /// False when the end marker never arrived before the deadline: the capture may be missing segments.
    pub complete: bool,
    /// True when libpcap honoured our request for nanosecond timestamps.
    pub nanosecond: bool,
}

impl Captured {
    /// True when segments may be missing from the capture: the end marker never came back, or the kernel dropped
    /// packets. The timeline is then incomplete, and its story may be wrong.
    pub fn may_miss_segments(&self) -> bool {
        !self.complete || self.dropped > 0
    }
}

#[derive(Debug)]
pub enum CaptureError {
    /// No right to open a packet socket.
    NoPermission(String),
    /// Anything else libpcap refused (no such device, bad filter…).
    Pcap(String),
    /// The link type of the device is one we do not decode.
    UnsupportedLink(i32),
    /// The end marker's socket or token could not be made.
    Marker(String),
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
            CaptureError::Marker(e) => {
                write!(f, "cannot prepare the end-of-capture marker: {e}")
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
    /// Waiting for the capture's descriptor failed.
    Wait(std::io::Error),
    /// The capture thread panicked.
    Panicked,
}

impl std::fmt::Display for FinishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FinishError::Marker(e) => write!(f, "could not send the end-of-capture marker: {e}"),
            FinishError::Read(e) => write!(f, "reading the capture failed: {e}"),
            FinishError::Stats(e) => write!(f, "libpcap statistics: {e}"),
            FinishError::Wait(e) => write!(f, "waiting for captured packets failed: {e}"),
            FinishError::Panicked => f.write_str("the capture thread panicked"),
        }
    }
}

impl std::error::Error for FinishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FinishError::Marker(e) | FinishError::Wait(e) => Some(e),
            FinishError::Read(e) | FinishError::Stats(e) => Some(e),
            FinishError::Panicked => None,
        }
    }
}

unsafe extern "C" {
    fn pcap_get_tstamp_precision(p: *mut std::ffi::c_void) -> std::ffi::c_int;
}

/// A capture running on its own thread. Dropping it without [`LiveCapture::finish`] (the scenario failed) tells
/// the thread to stop; it ends within [`POLL_SLICE`].
pub struct LiveCapture {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Captured, FinishError>>>,
    marker: Marker,
    /// B's address: where the end marker goes.
    b: SocketAddr,
    /// Whether it captures the loopback device (else a link scenario's veth).
    loopback: bool,
}

impl LiveCapture {
    /// B's address, which the capture filters on.
    pub fn b(&self) -> SocketAddr {
        self.b
    }
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// The loopback device name on Linux.
pub const LOOPBACK: &str = "lo";

/// The bytes kept of each frame. The demo pair's largest segment carries well under a hundred bytes and its
/// headers at most 114 (Ethernet, IPv6, TCP with every option); `tests/capture.rs` checks the saved runs fit. A small
/// snap length keeps ring slots small: libpcap sizes each slot by it (65535 gave a ring of 64 slots).
pub const SNAPLEN: i32 = 512;

/// The kernel ring libpcap maps: about 3,500 slots of [`SNAPLEN`] bytes, where one run puts a few dozen frames
/// (loopback puts each frame in twice, sent and received) and the capture is open before its filter applies.
const RING_BYTES: i32 = 2 << 20;

/// How long the marker may take to come back once sent; past this the capture ends incomplete.
pub const MARKER_WAIT: Duration = Duration::from_secs(2);

/// How long the reading thread sleeps in poll(2) at most before it looks whether it was told to stop.
const POLL_SLICE: Duration = Duration::from_millis(20);

/// The BPF filter for one run: the TCP segments to and from `port`, and the end marker, a datagram sent from
/// `marker_port` to it.
pub fn filter_for(port: u16, marker_port: u16) -> String {
    format!("tcp port {port} or (udp src port {marker_port} and dst port {port})")
}

/// The end-of-capture marker: a socket bound before the capture opens (so the filter names its port) and a
/// payload no other process can forge, a random token drawn for this run.
struct Marker {
    socket: UdpSocket,
    payload: Vec<u8>,
}

/// What every marker's payload starts with, before the token.
const MARKER_PREFIX: &[u8] = b"tcp-close-watch: end of capture ";

impl Marker {
    /// A socket on the loopback address of `b`'s family (any address, when `b` is reached over a device of its
    /// own), and a fresh token.
    fn new(b: SocketAddr, loopback: bool) -> std::io::Result<Marker> {
        let any = match (b.is_ipv6(), loopback) {
            (true, true) => "[::1]:0",
            (false, true) => "127.0.0.1:0",
            (true, false) => "[::]:0",
            (false, false) => "0.0.0.0:0",
        };
        let socket = UdpSocket::bind(any)?;
        let mut payload = MARKER_PREFIX.to_vec();
        payload.extend(
            random_token()?
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .bytes(),
        );
        Ok(Marker { socket, payload })
    }

    fn port(&self) -> std::io::Result<u16> {
        Ok(self.socket.local_addr()?.port())
    }

    fn send(&self, b: SocketAddr) -> std::io::Result<()> {
        self.socket.send_to(&self.payload, b).map(|_| ())
    }
}

/// Does this frame (one that is not TCP) carry `payload`? A datagram's payload ends its frame on loopback.
fn is_marker(frame: &[u8], payload: &[u8]) -> bool {
    frame.ends_with(payload)
}

/// 16 bytes from the kernel's random pool.
fn random_token() -> std::io::Result<[u8; 16]> {
    let mut token = [0u8; 16];
    let mut got = 0;
    while got < token.len() {
        // SAFETY: the pointer and length describe the unfilled tail of a buffer we own.
        let n = unsafe { libc::getrandom(token[got..].as_mut_ptr().cast(), token.len() - got, 0) };
        match n {
            n if n > 0 => got += n as usize,
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(token)
}

/// Capture what goes to and from B's port on the loopback device. Returns once the capture is live, so nothing
/// sent afterwards is missed.
pub fn start(b: SocketAddr) -> Result<LiveCapture, CaptureError> {
    start_into(LOOPBACK, b, None)
}

/// Capture what goes to and from B's port on `device` (of the calling thread's network namespace: a link
/// scenario captures on A's end of its veth, inside A's namespace), also adding each segment to `seen` as it is
/// read, for a scenario that waits on the wire.
pub fn start_into(
    device: &str,
    b: SocketAddr,
    seen: Option<Seen>,
) -> Result<LiveCapture, CaptureError> {
    let marker =
        Marker::new(b, device == LOOPBACK).map_err(|e| CaptureError::Marker(e.to_string()))?;
    let port = marker
        .port()
        .map_err(|e| CaptureError::Marker(e.to_string()))?;
    start_on(device, &filter_for(b.port(), port), b, marker, seen)
}

fn open_error(e: pcap::Error) -> CaptureError {
    let text = e.to_string();
    if text.contains("ermission") || text.contains("EPERM") || text.contains("not permitted") {
        CaptureError::NoPermission(text)
    } else {
        CaptureError::Pcap(text)
    }
}

fn start_on(
    device: &str,
    filter: &str,
    b: SocketAddr,
    marker: Marker,
    seen: Option<Seen>,
) -> Result<LiveCapture, CaptureError> {
    let mut cap = pcap::Capture::from_device(device)
        .map_err(open_error)?
        .immediate_mode(true)
        .snaplen(SNAPLEN)
        .buffer_size(RING_BYTES)
        .precision(pcap::Precision::Nano)
        .open()
        .map_err(open_error)?;
    cap.filter(filter, true).map_err(open_error)?;
    // Never block in libpcap: the thread waits in poll(2) with its own deadline (libpcap's read timeout does not
    // fire in immediate mode until a packet arrives).
    let mut cap = cap.setnonblock().map_err(open_error)?;
    // Drops counted so far were of frames before the filter applied, none of this run's.
    let dropped_before = cap.stats().map_err(open_error)?.dropped;
    let dlt = cap.get_datalink().0;
    let link = LinkType::from_number(dlt as u32).ok_or(CaptureError::UnsupportedLink(dlt))?;
    // SAFETY: the handle is open; libpcap only reads its own field.
    let nanosecond = unsafe { pcap_get_tstamp_precision(cap.as_ptr().cast()) } == 1;
    let stop = Arc::new(AtomicBool::new(false));
    let reading = Reading {
        link,
        nanosecond,
        marker: marker.payload.clone(),
        dropped_before,
        stop: Arc::clone(&stop),
        seen,
    };
    let thread = std::thread::spawn(move || read_until_marker(cap, &reading));
    Ok(LiveCapture {
        stop,
        thread: Some(thread),
        marker,
        b,
        loopback: device == LOOPBACK,
    })
}

/// What the reading thread needs to know.
struct Reading {
    link: LinkType,
    nanosecond: bool,
    /// The marker's payload.
    marker: Vec<u8>,
    /// libpcap's drop count when the capture started.
    dropped_before: u32,
    /// Set once the marker is on its way (or the capture is abandoned).
    stop: Arc<AtomicBool>,
    /// Where each segment is shown as it is read (a scenario's waits on the wire), if anywhere.
    seen: Option<Seen>,
}

/// Read until the marker is in, or [`MARKER_WAIT`] after being told to stop. libpcap is non-blocking; between
/// reads the thread waits in poll(2) on the capture's descriptor for at most [`POLL_SLICE`], so no lost marker
/// or silent device can keep it past its deadline.
fn read_until_marker(
    mut cap: pcap::Capture<pcap::Active>,
    r: &Reading,
) -> Result<Captured, FinishError> {
    let mut got = Captured {
        segments: Vec::new(),
        frames: Vec::new(),
        linktype: r.link.number(),
        undecoded: Vec::new(),
        dropped: 0,
        complete: false,
        nanosecond: r.nanosecond,
    };
    let fd = cap.as_raw_fd();
    let mut deadline: Option<Instant> = None;
    'reading: loop {
        loop {
            match cap.next_packet() {
                Ok(p) => {
                    let ts = timestamp(p.header.ts, r.nanosecond);
                    if take_frame(&mut got, r, ts, p.data, p.header.len) {
                        got.complete = true;
                        break 'reading;
                    }
                }
                Err(pcap::Error::TimeoutExpired) => break,
                Err(e) => return Err(FinishError::Read(e)),
            }
        }
        if deadline.is_none() && r.stop.load(Ordering::Acquire) {
            // the marker is on its way: it must arrive soon, or something is wrong
            deadline = Some(Instant::now() + MARKER_WAIT);
        }
        let wait = match deadline {
            None => POLL_SLICE,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(POLL_SLICE),
                _ => break,
            },
        };
        wait_readable(fd, wait).map_err(FinishError::Wait)?;
    }
    let stats = cap.stats().map_err(FinishError::Stats)?;
    got.dropped = stats.dropped.wrapping_sub(r.dropped_before);
    Ok(got)
}

/// Keep one captured frame; true when it is the marker.
fn take_frame(
    got: &mut Captured,
    r: &Reading,
    ts: TimestampNs,
    data: &[u8],
    orig_len: u32,
) -> bool {
    match decode::decode(r.link, ts, data) {
        Ok(seg) => {
            if let Some(seen) = &r.seen {
                seen.add_segment(&seg);
            }
            got.segments.push(seg);
            got.frames.push(RawFrame {
                ts,
                data: data.to_vec(),
                orig_len,
            });
            false
        }
        // the end marker: everything sent before it has been read
        Err(Skip::NotTcp) if is_marker(data, &r.marker) => true,
        // a datagram that is not ours (another process's, or a forged marker) is not the end
        Err(other) => {
            got.undecoded.push(other);
            false
        }
    }
}

/// Wait until `fd` is readable or `wait` has passed; an interrupted wait is a short one.
fn wait_readable(fd: std::os::fd::RawFd, wait: Duration) -> std::io::Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    // SAFETY: one pollfd we own, for the duration of the call.
    if unsafe { libc::poll(&mut pfd, 1, ms) } < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

fn timestamp(tv: libc::timeval, nanosecond: bool) -> TimestampNs {
    let frac = tv.tv_usec;
    tv.tv_sec * 1_000_000_000 + if nanosecond { frac } else { frac * 1000 }
}

impl LiveCapture {
    /// Send the end marker, stop once it is read (or [`MARKER_WAIT`] later), and hand back what was captured.
    /// Returns within [`MARKER_WAIT`] and a poll slice whatever the network does.
    ///
    /// On a device of its own (a link scenario's veth) whose link was set down (`link down`), the marker cannot
    /// leave (ENETUNREACH, ENETDOWN): nor can anything else, either way, since the link went down, and what was
    /// sent before is in the ring already (the tap copies a frame as it is sent). The capture is then read until
    /// its deadline and taken as whole.
    pub fn finish(mut self) -> Result<Captured, FinishError> {
        self.stop.store(true, Ordering::Release);
        let link_down = match self.marker.send(self.b) {
            Ok(()) => false,
            Err(e)
                if !self.loopback
                    && matches!(e.raw_os_error(), Some(libc::ENETUNREACH | libc::ENETDOWN)) =>
            {
                true
            }
            Err(e) => return Err(FinishError::Marker(e)),
        };
        let thread = self.thread.take().ok_or(FinishError::Panicked)?;
        let mut got = thread.join().map_err(|_| FinishError::Panicked)??;
        got.complete |= link_down;
        Ok(got)
    }
}

/// A capture that stays open until dropped, read by its caller (`watch`): any device, any filter, no end marker.
/// [`Stream::read`] never blocks; [`Stream::wait`] waits in poll(2) for at most the time given.
pub struct Stream {
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    nanosecond: bool,
    dropped_before: u32,
    received_before: u32,
}

/// The kernel ring of a live capture: room for about 100,000 frames of [`SNAPLEN`] bytes, a few tenths of a second
/// of a busy loopback, so a pause of the reader (printing, a slow terminal) does not drop frames.
pub const STREAM_RING_BYTES: i32 = 64 << 20;

/// Every address of every device of this machine (to tell a local end of a connection from a remote one).
pub fn local_addresses() -> Vec<std::net::IpAddr> {
    pcap::Device::list()
        .map(|l| {
            l.into_iter()
                .flat_map(|d| d.addresses.into_iter().map(|a| a.addr))
                .collect()
        })
        .unwrap_or_default()
}

/// Make `program` the kernel's filter of the capture socket `fd`, in place of the one libpcap set.
fn attach_kernel_filter(fd: RawFd, program: &pcap::BpfProgram) -> std::io::Result<()> {
    let insns = program.get_instructions();
    let prog = libc::sock_fprog {
        len: u16::try_from(insns.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?,
        // the layout of libpcap's bpf_insn is the kernel's sock_filter; the kernel copies the program
        filter: insns.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `prog` points at `insns`, alive for the call; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The capture devices libpcap lists, by name (for a message naming those that exist).
pub fn device_names() -> Vec<String> {
    pcap::Device::list()
        .map(|l| l.into_iter().map(|d| d.name).collect())
        .unwrap_or_default()
}

impl Stream {
    /// Open `device` with `filter` (BPF; libpcap's own message when it refuses it). Each frame is handed over as
    /// it comes (immediate mode): a short connection's sockets are looked up while they live, a fraction of a
    /// millisecond after its SYN. Under load the reader paces itself (`pipeline::watch`), not the kernel: frames
    /// handed over in blocks (TPACKET_V3, 2 ms) cost as little CPU but came too late to name the processes of
    /// connections that last less than that.
    ///
    /// On a loopback device the kernel hands the ring each frame twice, as it leaves and as it arrives, and
    /// libpcap throws the leaving copy away in user space. The kernel's filter is then replaced by one that also
    /// says `inbound`, so the leaving copy is dropped before it is copied: half the kernel's work for every frame
    /// on `lo`, and the same frames shown. Not through libpcap's own filter: after setting one, libpcap runs it in
    /// user space on the next frame (one that may have passed the filter before), where `inbound` cannot be read
    /// and drops that frame; libpcap's filter, without `inbound`, stays for that frame.
    pub fn open(device: &str, filter: &str) -> Result<Stream, CaptureError> {
        let s = Stream::open_as_given(device, filter)?;
        if device == LOOPBACK {
            let inbound = s
                .cap
                .compile(&format!("inbound and ({filter})"), true)
                .map_err(open_error)?;
            attach_kernel_filter(s.cap.as_raw_fd(), &inbound).map_err(|e| {
                CaptureError::Pcap(format!("cannot set the kernel's filter on {device}: {e}"))
            })?;
        }
        Ok(s)
    }

    /// [`Stream::open`] with `filter` given to the kernel as it is (a test's reference: on `lo`, the kernel copies
    /// each frame twice).
    pub fn open_as_given(device: &str, filter: &str) -> Result<Stream, CaptureError> {
        let mut cap = pcap::Capture::from_device(device)
            .map_err(open_error)?
            .immediate_mode(true)
            .snaplen(SNAPLEN)
            .buffer_size(STREAM_RING_BYTES)
            .precision(pcap::Precision::Nano)
            .open()
            .map_err(open_error)?;
        cap.filter(filter, true).map_err(open_error)?;
        let cap = cap.setnonblock().map_err(open_error)?;
        let dlt = cap.get_datalink().0;
        let link = LinkType::from_number(dlt as u32).ok_or(CaptureError::UnsupportedLink(dlt))?;
        // SAFETY: the handle is open; libpcap only reads its own field.
        let nanosecond = unsafe { pcap_get_tstamp_precision(cap.as_ptr().cast()) } == 1;
        let mut s = Stream {
            cap,
            link,
            nanosecond,
            dropped_before: 0,
            received_before: 0,
        };
        // frames counted so far came before the filter applied
        if let Ok(st) = s.cap.stats() {
            (s.dropped_before, s.received_before) = (st.dropped, st.received);
        }
        Ok(s)
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Hand every frame waiting in the ring to `take` (time, bytes, length on the wire), up to `max`; how many.
    /// One pcap_dispatch: each frame is read where it lies in the ring (pcap_next_ex would copy it out first).
    pub fn read(
        &mut self,
        max: usize,
        take: &mut dyn FnMut(TimestampNs, &[u8], u32),
    ) -> Result<usize, FinishError> {
        let nanosecond = self.nanosecond;
        self.cap
            .dispatch(Some(max), |p| {
                take(timestamp(p.header.ts, nanosecond), p.data, p.header.len)
            })
            .map_err(FinishError::Read)
    }

    /// Wait until frames are waiting or `wait` has passed.
    pub fn wait(&self, wait: Duration) -> Result<(), FinishError> {
        wait_readable(self.cap.as_raw_fd(), wait).map_err(FinishError::Wait)
    }

    /// Frames the kernel's filter passed to this capture since it opened: copied into the ring, or dropped
    /// because it was full.
    pub fn received(&mut self) -> Result<u32, FinishError> {
        let st = self.cap.stats().map_err(FinishError::Stats)?;
        Ok(st.received.wrapping_sub(self.received_before))
    }

    /// Packets the kernel dropped from this capture's ring since it opened (it was full).
    pub fn dropped(&mut self) -> Result<u32, FinishError> {
        let st = self.cap.stats().map_err(FinishError::Stats)?;
        Ok(st.dropped.wrapping_sub(self.dropped_before))
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
    fn filter_names_bs_port_and_the_markers() {
        assert_eq!(
            filter_for(8080, 40000),
            "tcp port 8080 or (udp src port 40000 and dst port 8080)"
        );
    }

    #[test]
    fn each_marker_carries_its_own_token() {
        let b: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let (one, two) = (Marker::new(b, true).unwrap(), Marker::new(b, true).unwrap());
        assert!(one.payload.starts_with(MARKER_PREFIX));
        assert_eq!(one.payload.len(), MARKER_PREFIX.len() + 32);
        assert_ne!(one.payload, two.payload);
        assert_ne!(one.port().unwrap(), 0);
    }

    #[test]
    fn only_a_frame_ending_in_the_token_is_the_marker() {
        let b: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let marker = Marker::new(b, true).unwrap();
        let mut frame = vec![0u8; 42];
        frame.extend(&marker.payload);
        assert!(is_marker(&frame, &marker.payload));
        let mut forged = vec![0u8; 42];
        forged.extend(MARKER_PREFIX);
        forged.extend(b"00000000000000000000000000000000");
        assert!(!is_marker(&forged, &marker.payload));
        assert!(!is_marker(&frame[..frame.len() - 1], &marker.payload));
    }

    fn udp_frame(payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .udp(40000, 9)
            .write(&mut frame, payload)
            .unwrap();
        frame
    }

    fn empty() -> Captured {
        Captured {
            segments: vec![],
            frames: vec![],
            linktype: 1,
            undecoded: vec![],
            dropped: 0,
            complete: false,
            nanosecond: true,
        }
    }

    #[test]
    fn a_datagram_without_the_token_does_not_end_the_capture() {
        let b: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let marker = Marker::new(b, true).unwrap();
        let r = Reading {
            link: LinkType::Ethernet,
            nanosecond: true,
            marker: marker.payload.clone(),
            dropped_before: 0,
            stop: Arc::new(AtomicBool::new(false)),
            seen: None,
        };
        let mut got = empty();
        for forged in [
            &b"hello"[..],
            MARKER_PREFIX,
            b"tcp-close-watch: end of capture",
        ] {
            let frame = udp_frame(forged);
            assert!(!take_frame(&mut got, &r, 1, &frame, frame.len() as u32));
        }
        assert_eq!(got.undecoded, [Skip::NotTcp, Skip::NotTcp, Skip::NotTcp]);
        let frame = udp_frame(&marker.payload);
        assert!(take_frame(&mut got, &r, 2, &frame, frame.len() as u32));
        assert_eq!(got.undecoded.len(), 3, "the marker itself is not counted");
    }

    #[test]
    fn captured_says_when_segments_may_be_missing() {
        let mut c = Captured {
            segments: vec![],
            frames: vec![],
            linktype: 1,
            undecoded: vec![],
            dropped: 0,
            complete: true,
            nanosecond: true,
        };
        assert!(!c.may_miss_segments());
        c.dropped = 1;
        assert!(c.may_miss_segments());
        c.dropped = 0;
        c.complete = false;
        assert!(c.may_miss_segments());
    }
}
