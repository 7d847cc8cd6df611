//! `analyze`: how every TCP connection in saved captures ended. [`run`] is the command — each file read, checked
//! and printed as its summary, the timelines of the connections asked for, or the run it saved (several saved runs:
//! one comparison) — and [`analyze`] reads one file into a report: every connection's record, frame counts,
//! skipped frames and why, and the segments of the connections asked for with `--conn`. Reading streams: only
//! connection records grow, never per packet.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::{self, Write};
use std::sync::mpsc;

use crate::capfile::saved;
use crate::capfile::{CaptureReader, Frame};
use crate::explain::infer;
use crate::explain::timeline::{self, Sides, Timeline};
use crate::model::segment::Segment;
use crate::pipeline::{Feedback, tell};
use crate::render::printer::ConnView;
use crate::render::run::RunView;
use crate::render::summary::Shown;
use crate::render::{RowsPrinter, TimelinePrinter};
use crate::track::conn::{FlowHasher, TcpPacket, Tracker};
use crate::track::report::{Counts, FileReport};
use crate::track::select::Selection;
use crate::wire::bpf::Bpf;
use crate::wire::decode;
use crate::wire::link::LinkType;

/// The line above the comparison of several saved runs.
const SAVED_HEADING: &str = "Saved runs";

/// A validated `analyze`.
pub struct Config {
    /// Capture files; `-` is standard input.
    pub files: Vec<String>,
    /// Connections whose timelines to print (`--conn`), in the order asked; none prints summaries.
    pub conns: Vec<u32>,
    /// Which connections the summaries show.
    pub selection: Selection,
    /// The selection's `--filter`, compiled.
    pub bpf: Option<Bpf>,
    pub timeline: TimelinePrinter,
    /// `None` when the format is a diagram, which summaries and comparisons are not drawn in.
    pub rows: Option<RowsPrinter>,
}

#[derive(Debug)]
pub enum Error {
    /// The output could not be written.
    Output(io::Error),
    /// A capture's summary was asked for in a diagram format (the format's name).
    DiagramOfSummary(&'static str),
    /// Several saved runs were to be compared in a diagram format.
    DiagramOfRuns(&'static str),
    /// No input could be read at all.
    NothingRead { inputs: usize },
    /// Some inputs could not be read to the end; results were printed for what was read.
    Incomplete { failed: usize, inputs: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Output(e) => write!(f, "cannot write output: {e}"),
            Error::DiagramOfSummary(format) => write!(
                f,
                "--format {format} draws one connection: add --conn N (the summary's id column)"
            ),
            Error::DiagramOfRuns(format) => write!(
                f,
                "--format {format} draws one connection: give one file, or add --conn n"
            ),
            Error::NothingRead { inputs: 1 } => f.write_str("nothing could be read from the input"),
            Error::NothingRead { inputs } => {
                write!(f, "nothing could be read from any of the {inputs} inputs")
            }
            Error::Incomplete { failed, inputs } => write!(
                f,
                "{failed} of {inputs} input{} could not be read to the end; results above cover what was read",
                if *inputs == 1 { "" } else { "s" }
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Output(e) => Some(e),
            _ => None,
        }
    }
}

/// Read every file and print what `config` asks for, to `out`. Files that cannot be read are noted and skipped;
/// the error at the end says how many (after the results of the others).
pub fn run(
    mut config: Config,
    out: &mut dyn Write,
    feedback: &mut dyn Feedback,
) -> Result<(), Error> {
    let keep: HashSet<u32> = config.conns.iter().copied().collect();
    // several saved runs (run --write) and no --conn: one comparison row each, as `run --mode all` prints
    let files = std::mem::take(&mut config.files);
    let compare_runs = config.conns.is_empty() && files.len() > 1;
    let mut runs = Vec::new();
    let (mut unreadable, mut damaged) = (0, 0);
    for name in &files {
        feedback.reading(name);
        let opened = CaptureReader::open(name).map_err(|e| e.to_string());
        let report = analyze(
            name,
            opened,
            &keep,
            config.bpf.as_mut(),
            &mut |done, total| feedback.progress(done, total),
        );
        feedback.read();
        let health = check(&report, feedback);
        damaged += usize::from(health.damaged);
        if !health.readable {
            unreadable += 1;
            continue;
        }
        match (&report.saved_run, compare_runs) {
            (Some(saved), true) => {
                let t = saved_timeline(&report).expect("the report carries a saved run");
                runs.push(tell(&saved.pair, &t, &saved.kernel).outcome);
            }
            _ => print_report(&report, &mut config, out, feedback)?,
        }
    }
    if !runs.is_empty() {
        let format = config.timeline.format().name();
        let printer = config.rows.as_mut().ok_or(Error::DiagramOfRuns(format))?;
        printer
            .comparison(out, &runs, SAVED_HEADING)
            .map_err(Error::Output)?;
    }
    let inputs = files.len();
    if unreadable == inputs {
        return Err(Error::NothingRead { inputs });
    }
    if unreadable + damaged > 0 {
        return Err(Error::Incomplete {
            failed: unreadable + damaged,
            inputs,
        });
    }
    Ok(())
}

/// What reading a file came to.
struct Health {
    /// Something of it can be shown.
    readable: bool,
    /// Reading stopped before its end.
    damaged: bool,
}

/// Tell the user what kept a file from being read whole, or gave no TCP from it.
fn check(r: &FileReport, feedback: &mut dyn Feedback) -> Health {
    let name = &r.name;
    let mut health = Health {
        readable: true,
        damaged: false,
    };
    if let Some(e) = &r.open_error {
        feedback.note(&format!("{name}: {e}; nothing analysed"));
        health.readable = false;
        return health;
    }
    if let Some(e) = &r.read_error {
        if r.counts.frames == 0 {
            feedback.note(&format!("{name}: {e}; nothing analysed"));
            health.readable = false;
            return health;
        }
        feedback.note(&format!("{name}: {e}"));
        health.damaged = true;
    }
    let link_frames: u64 = r.unknown_links.values().sum();
    if link_frames > 0 {
        let links: Vec<String> = r.unknown_links.keys().map(|l| l.to_string()).collect();
        feedback.note(&format!(
            "{name}: link type {} is not one we decode (we read Ethernet, Linux cooked v1/v2, BSD loopback, raw IP, \
             IPv4, IPv6, PPP, FDDI, NFLOG, IPoIB); {link_frames} of {} frames skipped",
            links.join(", "),
            r.counts.frames
        ));
        health.readable = link_frames != r.counts.frames;
    } else if r.counts.frames > 0 && r.counts.tcp_segments == 0 {
        let why: Vec<String> = r.skipped.iter().map(|(k, n)| format!("{n} {k}")).collect();
        feedback.note(&format!(
            "{name}: no TCP segment in {} frame{} ({})",
            r.counts.frames,
            if r.counts.frames == 1 { "" } else { "s" },
            why.join(", ")
        ));
    }
    health
}

/// One file's results: the run it saved, the timelines of the connections asked for, or its summary.
fn print_report(
    r: &FileReport,
    config: &mut Config,
    out: &mut dyn Write,
    feedback: &mut dyn Feedback,
) -> Result<(), Error> {
    if let (Some(saved), true) = (&r.saved_run, config.conns.is_empty()) {
        // A file saved by `run --write`: print the run as the live run did, socket calls included.
        let t = saved_timeline(r).expect("the report carries a saved run");
        let told = tell(&saved.pair, &t, &saved.kernel);
        let view = RunView {
            pair: &saved.pair,
            timeline: &t,
            kernel: &saved.kernel,
            warnings: &[],
            account: &told.account,
            outcome: &told.outcome,
            saved_in: Some(&r.name),
        };
        return config.timeline.run(out, &view).map_err(Error::Output);
    }
    if config.conns.is_empty() {
        let format = config.timeline.format().name();
        let printer = config
            .rows
            .as_mut()
            .ok_or(Error::DiagramOfSummary(format))?;
        return printer
            .summary(out, &shown(r, &config.selection))
            .map_err(Error::Output);
    }
    for &id in &config.conns {
        let Some(conn) = r.conns.get(id as usize) else {
            feedback.note(&format!(
                "{}: no connection {id} (it has {}: 0 to {})",
                r.name,
                r.conns.len(),
                r.conns.len().saturating_sub(1)
            ));
            continue;
        };
        let view = ConnView {
            file: &r.name,
            conn,
            timeline: &conn_timeline(r, id),
        };
        config
            .timeline
            .connection(out, &view)
            .map_err(Error::Output)?;
    }
    Ok(())
}

/// The connections of a report that `sel` shows, once for every printer of its summary, and their endings.
pub fn shown<'a>(r: &'a FileReport, sel: &Selection) -> Shown<'a> {
    Shown {
        report: r,
        conns: r.conns.iter().filter(|c| sel.shows(c)).collect(),
        endings: r.endings(sel),
    }
}

/// The timeline of connection `id` of a report, its states inferred; a saved run's own connection with the run's
/// socket calls.
fn conn_timeline(r: &FileReport, id: u32) -> Timeline {
    let c = &r.conns[id as usize];
    let sides = Sides {
        a: c.client.socket(),
        b: c.server.socket(),
        a_label: format!("client {}", c.client.socket()),
        b_label: format!("server {}", c.server.socket()),
    };
    let segs = r.kept.get(&id).map(Vec::as_slice).unwrap_or(&[]);
    let saved = r
        .saved_run
        .as_ref()
        .filter(|s| (s.pair.a, s.pair.b) == (sides.a, sides.b));
    let mut t = match saved {
        Some(s) => timeline::build(Sides::for_pair(&s.pair), &s.pair.calls, segs),
        None => timeline::build(sides, &[], segs),
    };
    infer::annotate(&mut t);
    t
}

/// The timeline of the run a file carries (see `capfile::saved`): its socket calls and the segments read from the
/// file, as the live run showed them.
pub fn saved_timeline(report: &FileReport) -> Option<Timeline> {
    let saved = report.saved_run.as_ref()?;
    let mut segments: Vec<Segment> = report.kept.values().flatten().cloned().collect();
    segments.sort_by_key(|s| s.ts);
    Some(timeline::build(
        Sides::for_pair(&saved.pair),
        &saved.pair.calls,
        &segments,
    ))
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
        Some((TcpPacket::of(&seg), h, payload, link))
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
    let mut report = FileReport {
        name: name.to_string(),
        ..FileReport::default()
    };
    let mut reader = match opened {
        Ok(r) => r,
        Err(e) => {
            report.open_error = Some(e.to_string());
            return report;
        }
    };
    report.kind = Some(reader.kind());
    report.gzip = reader.is_gzip();
    report.saved_run = reader
        .leading_comments()
        .iter()
        .find_map(|c| saved::parse_run_comment(c));
    // a saved run is one small connection (and a refused attempt): keep its segments for its timeline
    let keep_all = report.saved_run.is_some();
    let mut tracker = Tracker::new();
    let decoding = if bpf.is_none() && keep.is_empty() && !keep_all {
        // Only the summary: read and decode on one core while the other tracks.
        two_threads(&mut reader, &mut tracker, &mut report, progress)
    } else {
        // Frames themselves are needed (the filter, payloads): one thread.
        one_thread(
            &mut reader,
            &mut tracker,
            &mut report,
            keep,
            keep_all,
            bpf,
            progress,
        )
    };
    decoding.finish(&mut report);
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
    progress: &mut dyn FnMut(u64, u64),
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
                    payload: payload[..payload.len().min(64)].to_vec(),
                };
                report.kept.entry(id).or_default().push(kept);
            }
        }
        if d.counts.frames.is_multiple_of(PROGRESS_EVERY)
            && let Some((done, total)) = reader.progress()
        {
            progress(done, total);
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
    progress: &mut dyn FnMut(u64, u64),
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
                progress(done, total);
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capfile::testfiles::pcap;
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
