//! One capture file → a report: every TCP connection's record, frame counts, skipped frames and why, and the
//! segments of the connections asked for with `--conn`. Streams: only connection records grow, never per packet.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;

use crate::capfile::saved;
use crate::capfile::{CaptureReader, Frame};
use crate::explain::timeline::{self, Sides, States, Timeline};
use crate::model::segment::{PAYLOAD_KEPT, Segment};
use crate::pipeline::Feedback;
use crate::track::packet::TcpPacket;
use crate::track::report::{Counts, FileReport, IpFacts};
use crate::track::select::Selection;
use crate::track::tracker::{FlowHasher, Tracker};
use crate::wire::bpf::Bpf;
use crate::wire::decode;
use crate::wire::link::LinkType;

/// The timeline of the run a file carries (see `capfile::saved`): its socket calls and the segments read from the
/// file, as the live run showed them.
pub fn saved_timeline(report: &FileReport) -> Option<Timeline> {
    let saved = report.saved_run.as_ref()?;
    let mut segments: Vec<Segment> = report.kept.values().flatten().cloned().collect();
    segments.sort_by_key(|s| s.ts);
    let kernel = saved
        .trace
        .as_ref()
        .map_or(&[][..], |t| t.events.as_slice());
    Some(timeline::build_with_kernel(
        Sides::for_pair(&saved.pair),
        &saved.pair.calls,
        &segments,
        kernel,
        States::Recorded,
    ))
}

/// Connections tracked past which the user is told, once, how much memory they take: each keeps a record of
/// about [`BYTES_PER_CONNECTION`] (measured with examples/synth; see docs/analyze.md), so 5 M is about 1.1 GB, and
/// nothing is freed before the file ends.
pub const MANY_CONNECTIONS: usize = 5_000_000;
/// What one tracked connection costs, record and index, as measured (maximum RSS over 0.1 M to 1 M connections).
pub const BYTES_PER_CONNECTION: usize = 225;
/// What a connection `--port`/`--host` can never show costs (numbered, no record), measured the same way.
pub const BYTES_PER_UNTRACKED: usize = 85;

/// What reading tells its user as it goes: progress, and once that tracking has passed [`MANY_CONNECTIONS`].
struct Growth<'a> {
    feedback: &'a mut dyn Feedback,
    name: &'a str,
    /// The count to tell at ([`MANY_CONNECTIONS`]).
    at: usize,
    told: bool,
}

impl Growth<'_> {
    fn progress(&mut self, done: u64, total: u64) {
        self.feedback.progress(done, total);
    }

    /// `kept` connections with a record so far, and `untracked` numbered without one.
    fn check(&mut self, kept: usize, untracked: usize) {
        let bytes = kept * BYTES_PER_CONNECTION + untracked * BYTES_PER_UNTRACKED;
        if self.told || bytes < self.at * BYTES_PER_CONNECTION {
            return;
        }
        self.told = true;
        let conns = kept + untracked;
        self.feedback.note(&format!(
            "{}: warning: {conns} connections tracked so far, about {} MB ({BYTES_PER_CONNECTION} bytes each), and \
             memory grows with each new one until the file ends; to keep fewer, name what you want with --port or \
             --host (the others then cost ~85 bytes), or cut the capture first (tcpdump -r FILE -w - 'port 443' | \
             tcp-close-watch analyze -)",
            self.name,
            bytes >> 20
        ));
    }
}

/// The plain progress callback of [`analyze`], as the [`Feedback`] the reading loops take (its notes are dropped).
struct ProgressOnly<'a>(&'a mut dyn FnMut(u64, u64));

impl Feedback for ProgressOnly<'_> {
    fn note(&mut self, _: &str) {}
    fn progress(&mut self, done: u64, total: u64) {
        (self.0)(done, total);
    }
}

/// How often to report progress, in frames: rarely enough to cost nothing.
const PROGRESS_EVERY: u64 = 1 << 16;

/// Packets per batch from the reader thread to the tracker: big enough that handing a batch over costs nothing
/// per packet, small enough (~600 KB) to stay in the CPU caches.
const BATCH: usize = 8192;
/// Batches in flight between the threads: bounds the memory the pipeline can take (a few MB).
const BATCHES_IN_FLIGHT: usize = 4;

/// Frame counts and why frames were skipped, as the frames are decoded.
#[derive(Default)]
struct Decoding {
    counts: Counts,
    unknown_links: BTreeMap<u32, u64>,
    skips: HashMap<decode::Skip, u64>,
}

impl Decoding {
    /// Count one frame and decode it: its packet, flow hash, payload and link type, or `None` (counted as
    /// skipped).
    #[inline]
    fn frame<'a>(
        &mut self,
        frame: &Frame<'a>,
        hasher: &FlowHasher,
    ) -> Option<(TcpPacket, u64, &'a [u8], LinkType)> {
        self.counts.frames += 1;
        let link = match frame.link {
            Ok(l) => l,
            Err(n) => {
                *self.unknown_links.entry(n).or_default() += 1;
                return None;
            }
        };
        let (seg, payload) = match decode::decode_parts(link, frame.ts, frame.data) {
            Ok(x) => x,
            Err(skip) => {
                *self.skips.entry(skip).or_default() += 1;
                return None;
            }
        };
        let c = &mut self.counts;
        c.tcp_segments += 1;
        c.syn += u64::from(seg.flags.syn());
        c.fin += u64::from(seg.flags.fin());
        c.rst += u64::from(seg.flags.rst());
        let h = hasher.hash_sockets(&seg.src, &seg.dst);
        Some((TcpPacket::captured(&seg, payload.len()), h, payload, link))
    }

    fn finish(self, report: &mut FileReport) {
        report.counts = self.counts;
        for (skip, n) in self.skips {
            report.skipped.insert(skip.describe().to_string(), n);
        }
        for (&link, &n) in &self.unknown_links {
            report
                .skipped
                .insert(format!("link type {link} not decoded"), n);
        }
        report.unknown_links = self.unknown_links;
    }
}

/// Read a whole capture. `opened` is the file opened, or why it could not be (kept in words in the report); `keep`
/// names the connection ids whose segments to keep (for `--conn`); `progress` is called now and then with (bytes
/// done, bytes total).
pub fn analyze<E: fmt::Display>(
    name: &str,
    opened: Result<CaptureReader, E>,
    keep: &HashSet<u32>,
    bpf: Option<&mut Bpf>,
    progress: &mut dyn FnMut(u64, u64),
) -> FileReport {
    let mut feedback = ProgressOnly(progress);
    analyze_with(name, opened, keep, false, bpf, None, &mut feedback)
}

/// [`analyze`], telling `feedback` the progress and, once, when the connections tracked take much memory. With
/// `shown`, the summary's selection, connections its `--port`/`--host` can never show get no record (they are
/// numbered all the same): the report's `conns` holds the others, `untracked` counts them.
pub fn analyze_with<E: fmt::Display>(
    name: &str,
    opened: Result<CaptureReader, E>,
    keep: &HashSet<u32>,
    keep_every: bool,
    bpf: Option<&mut Bpf>,
    shown: Option<&Selection>,
    feedback: &mut dyn Feedback,
) -> FileReport {
    // one copy of the reading code, whatever the error type (the hot loops are compiled once, in one place)
    read(
        name,
        opened.map_err(|e| e.to_string()),
        keep,
        keep_every,
        bpf,
        shown,
        feedback,
    )
}

fn read(
    name: &str,
    opened: Result<CaptureReader, String>,
    keep: &HashSet<u32>,
    keep_every: bool,
    bpf: Option<&mut Bpf>,
    shown: Option<&Selection>,
    progress: &mut dyn Feedback,
) -> FileReport {
    let mut growth = Growth {
        feedback: progress,
        name,
        at: MANY_CONNECTIONS,
        told: false,
    };
    let mut report = FileReport {
        name: name.to_string(),
        ..FileReport::default()
    };
    let mut reader = match opened {
        Ok(r) => r,
        Err(e) => {
            report.open_error = Some(e);
            return report;
        }
    };
    report.kind = Some(reader.kind());
    report.gzip = reader.is_gzip();
    report.saved_run = saved::run_in_comments(&reader.leading_comments());
    // a saved run is one small connection (and a refused attempt): keep its segments for its timeline
    let keep_all = keep_every || report.saved_run.is_some();
    let mut tracker = Tracker::new();
    let decoding = if bpf.is_none() && keep.is_empty() && !keep_all {
        // Only the summary: read and decode on one core while the other tracks, keeping no record of what it
        // can never show.
        tracker = shown.map_or_else(Tracker::new, Tracker::keeping);
        two_threads(&mut reader, &mut tracker, &mut report, &mut growth)
    } else {
        // Frames themselves are needed (the filter, payloads): one thread.
        one_thread(
            &mut reader,
            &mut tracker,
            &mut report,
            keep,
            keep_all,
            bpf,
            &mut growth,
        )
    };
    decoding.finish(&mut report);
    report.untracked = tracker.untracked();
    report.conns = tracker.conns;
    report
}

fn one_thread(
    reader: &mut CaptureReader,
    tracker: &mut Tracker,
    report: &mut FileReport,
    keep: &HashSet<u32>,
    keep_all: bool,
    mut bpf: Option<&mut Bpf>,
    growth: &mut Growth,
) -> Decoding {
    let hasher = tracker.hasher();
    let mut d = Decoding::default();
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                report.read_error = Some(e.to_string());
                break;
            }
        };
        if let Some((p, h, payload, link)) = d.frame(&frame, &hasher) {
            let matched = match bpf.as_deref_mut() {
                Some(b) => b.matches(crate::wire::link::LinkType::number(link), frame.data),
                None => false,
            };
            let id = tracker.add_packet(&p, h);
            if matched {
                tracker.conns[id as usize].bpf_matched = true;
            }
            if keep_all || (!keep.is_empty() && keep.contains(&id)) {
                let kept = Segment {
                    ts: p.ts,
                    src: p.src.socket(),
                    dst: p.dst.socket(),
                    flags: p.flags,
                    seq: p.seq,
                    ack: p.ack,
                    window: p.window,
                    len: p.len,
                    payload: payload[..payload.len().min(PAYLOAD_KEPT)].to_vec(),
                    ip_len: p.ip_len,
                };
                report
                    .kept_ip
                    .entry(id)
                    .or_default()
                    .push(ip_facts(frame.data, kept.src, kept.dst));
                report.kept.entry(id).or_default().push(kept);
            }
        }
        if d.counts.frames.is_multiple_of(PROGRESS_EVERY)
            && let Some((done, total)) = reader.progress()
        {
            growth.progress(done, total);
        }
        if d.counts.frames.is_multiple_of(PROGRESS_EVERY) {
            growth.check(tracker.conns.len(), tracker.untracked());
        }
    }
    d
}

/// A batch of decoded packets with their flow hashes, and where reading stood when it was sent.
struct Batch {
    packets: Vec<(TcpPacket, u64)>,
    progress: Option<(u64, u64)>,
}

/// A reader thread reads and decodes frames into batches of fixed-size records (hashed there too); this thread
/// feeds them to the tracker. The channel is bounded and batches go back to the reader to be refilled, so memory
/// stays a few MB whatever the file's size. Results are the same as [`one_thread`]'s, packet for packet.
fn two_threads(
    reader: &mut CaptureReader,
    tracker: &mut Tracker,
    report: &mut FileReport,
    growth: &mut Growth,
) -> Decoding {
    let hasher = tracker.hasher();
    let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<(TcpPacket, u64)>>();
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let mut d = Decoding::default();
            let mut read_error = None;
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                let frame = match reader.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        read_error = Some(e.to_string());
                        break;
                    }
                };
                if let Some((p, h, _, _)) = d.frame(&frame, &hasher) {
                    batch.push((p, h));
                    if batch.len() == BATCH {
                        let next = empty_rx
                            .try_recv()
                            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
                        let full = Batch {
                            packets: std::mem::replace(&mut batch, next),
                            progress: reader.progress(),
                        };
                        if full_tx.send(full).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = full_tx.send(Batch {
                packets: batch,
                progress: reader.progress(),
            });
            (d, read_error)
        });
        let mut batches = 0u64;
        for mut batch in full_rx {
            // the index slots of packets a few ahead are fetched while this one is tracked
            const AHEAD: usize = 8;
            let packets = &batch.packets;
            for (i, (p, h)) in packets.iter().enumerate() {
                if let Some((_, next)) = packets.get(i + AHEAD) {
                    tracker.prefetch(*next);
                }
                tracker.add_packet(p, *h);
            }
            batches += 1;
            if batches.is_multiple_of(PROGRESS_EVERY / BATCH as u64)
                && let Some((done, total)) = batch.progress
            {
                growth.progress(done, total);
            }
            growth.check(tracker.conns.len(), tracker.untracked());
            batch.packets.clear();
            let _ = empty_tx.send(batch.packets);
        }
        match worker.join() {
            Ok((d, read_error)) => {
                report.read_error = read_error;
                d
            }
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The TTL (hop limit) and IP ID of a frame's IP header: found as the IPv4 or IPv6 header, near the frame's
/// start, that carries TCP between the segment's two addresses (whatever the link header before it).
fn ip_facts(data: &[u8], src: SocketAddr, dst: SocketAddr) -> Option<IpFacts> {
    let within = |i: usize, n: usize| data.get(i..i + n);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (0..data.len().min(128)).find_map(|i| {
            let h = within(i, 20)?;
            let found = h[0] >> 4 == 4
                && h[0] & 0xf >= 5
                && h[9] == 6
                && h[12..16] == s.octets()
                && h[16..20] == d.octets();
            found.then(|| IpFacts {
                ttl: h[8],
                ip_id: Some(u16::from_be_bytes([h[4], h[5]])),
            })
        }),
        (IpAddr::V6(s), IpAddr::V6(d)) => (0..data.len().min(128)).find_map(|i| {
            let h = within(i, 40)?;
            let found = h[0] >> 4 == 6 && h[8..24] == s.octets() && h[24..40] == d.octets();
            found.then(|| IpFacts {
                ttl: h[7],
                ip_id: None,
            })
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::Notes;

    #[test]
    fn many_connections_are_told_once_with_what_to_do() {
        let mut notes = Notes::default();
        let mut growth = Growth {
            feedback: &mut notes,
            name: "big.pcap",
            at: 4_000_000,
            told: false,
        };
        growth.check(3_999_999, 0);
        growth.check(4_000_000, 0);
        growth.check(9_000_000, 0);
        assert_eq!(notes.0.len(), 1, "{:?}", notes.0);
        assert!(
            notes.0[0]
                .starts_with("big.pcap: warning: 4000000 connections tracked so far, about 858 MB")
        );
        assert!(notes.0[0].contains("--port or --host"), "{}", notes.0[0]);
        // connections without a record weigh what they cost: 10 M of them are about 4 M records
        let mut notes = Notes::default();
        let mut growth = Growth {
            feedback: &mut notes,
            name: "big.pcap",
            at: 4_000_000,
            told: false,
        };
        growth.check(1, 10_000_000);
        growth.check(1, 11_000_000);
        assert_eq!(notes.0.len(), 1, "{:?}", notes.0);
        assert!(notes.0[0].contains("11000001 connections"), "{:?}", notes.0);
    }

    use crate::capfile::testfiles::pcap;
    use crate::pipeline::analyze::shown;
    use crate::track::select::Selection;
    use etherparse::PacketBuilder;

    /// Many interleaved connections (more packets than several batches), some reset, some closed, then a cut.
    fn busy_capture(cut: usize) -> Vec<u8> {
        let mut frames = Vec::new();
        for i in 0..(3 * BATCH as u32) {
            let flow = i % 700;
            let port = 1000 + (flow as u16);
            let step = i / 700;
            let from_client = step % 2 == 0;
            let (src, dst, sp, dp) = if from_client {
                (
                    [10, 0, (flow >> 8) as u8, flow as u8],
                    [10, 1, 0, 1],
                    port,
                    80,
                )
            } else {
                (
                    [10, 1, 0, 1],
                    [10, 0, (flow >> 8) as u8, flow as u8],
                    80,
                    port,
                )
            };
            let b = PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4(src, dst, 64)
                .tcp(sp, dp, 100 + step * 10, 1000);
            let b = match (step, flow % 5) {
                (0, _) => b.syn(),
                (1, _) => b.syn().ack(101),
                (30, 1) => b.rst().ack(1),
                (31, 2) => b.fin().ack(1),
                (32, 2) => b.fin().ack(1),
                _ => b.psh().ack(1),
            };
            let mut f = Vec::new();
            b.write(&mut f, &[7; 10]).unwrap();
            frames.push((i64::from(i) * 1000, f));
        }
        // an ARP frame and a frame of an unknown link type's worth of garbage: skipped, and counted
        frames.push((0, vec![0; 20]));
        let mut bytes = pcap(false, false, 1, &frames);
        bytes.truncate(bytes.len() - cut);
        bytes
    }

    fn report(bytes: Vec<u8>, keep: &HashSet<u32>) -> String {
        let r = analyze(
            "t",
            CaptureReader::from_bytes(bytes).map_err(|e| e.to_string()),
            keep,
            None,
            &mut |_, _| {},
        );
        let shown = shown(&r, &Selection::default());
        format!(
            "{}{}{:?} {:?} {:?}",
            crate::render::summary::summary_json(&shown),
            crate::render::summary::totals_text(&shown),
            r.counts,
            r.read_error,
            r.skipped
        )
    }

    #[test]
    fn reader_thread_and_one_thread_agree() {
        for cut in [0, 30] {
            let two = report(busy_capture(cut), &HashSet::new());
            let one = report(busy_capture(cut), &HashSet::from([u32::MAX]));
            assert_eq!(two, one, "cut {cut}");
            assert!(
                two.contains("\"connections\":700"),
                "{}",
                &two[two.len() - 600..]
            );
            if cut > 0 {
                assert!(two.contains("cut short"), "cut {cut}");
            }
        }
    }
}
