//! The watch's state between reads: the live tracker and what it learned about each connection, kernel events that
//! came before their connection's first segment, the `--write` file, the totals. Fed frames, kernel events and
//! lookup answers by the loop in `mod.rs`; reports each connection once it has left the tracker.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Write};
use std::net::IpAddr;
use std::time::Duration;

use super::conn::{self, Extra, Process, SEGMENTS_KEPT};
use super::{Config, SETTLE};
use crate::capfile::write::{Opt, PcapngWriter};
use crate::explain::account;
use crate::explain::timeline::{self, Sides, States};
use crate::model::kernel::KernelEvent;
use crate::model::segment::TimestampNs;
use crate::os::capture::{self, SNAPLEN};
use crate::os::procmap::{self, Ask, Found, Lookups};
use crate::render::TimelinePrinter;
use crate::render::printer::ConnView;
use crate::render::watch::{WatchPrinter, WatchRow, WatchTotals};
use crate::track::conn::Side;
use crate::track::ends::Endpoint;
use crate::track::live::{self, Gone, Left, LiveTracker};
use crate::track::select::Selection;
use crate::wire::decode;
use crate::wire::link::LinkType;

/// Kernel events waiting for their connection's first segment: kept this long at most, and this many.
const PENDING_FOR: TimestampNs = 2_000_000_000;
const PENDING_MAX: usize = 100_000;
/// How long a connection that left waits more for a lookup still out (a busy machine answers late).
const HOLD_FOR: TimestampNs = 1_500_000_000;
/// Connections held so at most (each answer looks through them): beyond, a line goes out without waiting.
const HOLD_MAX: usize = 1024;
/// The pcapng option giving timestamps in ns.
const IF_TSRESOL: u16 = 9;

pub struct State {
    device: String,
    link: LinkType,
    tracker: LiveTracker<Extra>,
    selection: Selection,
    only_pid: Option<u32>,
    idle: TimestampNs,
    /// This machine's addresses (every end is local on `lo`).
    local: HashSet<IpAddr>,
    loopback: bool,
    pending: VecDeque<KernelEvent>,
    /// Connections that left while a lookup of theirs was still out, and until when they wait for it; by 4-tuple
    /// (each late answer looks its connection up here).
    holding: HashMap<(Endpoint, Endpoint), (Gone<Extra>, TimestampNs)>,
    /// Connections with a lookup due, to ask once the frames read with theirs are in ([`State::ask_due`]).
    due: Vec<(Endpoint, Endpoint)>,
    rows: WatchPrinter,
    timeline: Option<TimelinePrinter>,
    write: Option<(Box<dyn Write>, PcapngWriter)>,
    totals: WatchTotals,
}

impl State {
    pub fn new(config: &mut Config, link: LinkType, only_pid: Option<u32>) -> State {
        let write = config.write.take().map(|f| {
            let mut w = PcapngWriter::new(crate::capfile::Endian::Little);
            w.section(&[]);
            w.interface(
                link.number() as u16,
                SNAPLEN as u32,
                &[Opt::new(IF_TSRESOL, &[9]), Opt::text(2, &config.device)],
            );
            (f, w)
        });
        State {
            device: config.device.clone(),
            link,
            tracker: LiveTracker::new(&config.selection),
            selection: Selection {
                filter: None,
                ..config.selection.clone()
            },
            only_pid,
            idle: config.idle_timeout.as_nanos().min(i64::MAX as u128) as TimestampNs,
            local: capture::local_addresses().into_iter().collect(),
            loopback: config.device == capture::LOOPBACK,
            pending: VecDeque::new(),
            holding: HashMap::new(),
            due: Vec::new(),
            rows: std::mem::replace(
                &mut config.rows,
                WatchPrinter::new(crate::render::RowsFormat::Csv, crate::render::Style::PLAIN),
            ),
            timeline: config.timeline,
            write,
            totals: WatchTotals {
                device: config.device.clone(),
                ..WatchTotals::default()
            },
        }
    }

    /// One captured frame.
    pub fn frame(&mut self, ts: TimestampNs, data: &[u8], orig_len: u32) {
        if let Some((_, w)) = &mut self.write {
            w.packet(0, ts as u64, data, orig_len, &[]);
        }
        let Ok(seg) = decode::decode(self.link, ts, data) else {
            return;
        };
        let keep_segments = self.timeline.is_some();
        let Some((c, x)) = self.tracker.add_get(&seg) else {
            return;
        };
        if keep_segments && x.segments.len() < SEGMENTS_KEPT {
            x.segments.push(seg.clone());
        }
        // the client's socket exists from its SYN on; the server's connection socket once the handshake completed
        // (from the client's first segment after the SYN-ACK)
        let from_client = c.side_of(&seg) == Side::Client;
        let server_ready = c.syns(Side::Server) > 0 && from_client && !seg.flags.syn()
            || c.syns(Side::Client) == 0;
        let asks = [(Side::Client, true), (Side::Server, server_ready)];
        let mut due = false;
        for (side, ready) in asks {
            if ready && x.process[side.index()] == Process::NotAsked {
                x.process[side.index()] = Process::Due;
                due = true;
            }
        }
        if due {
            self.due.push((
                Endpoint::from_socket(seg.src),
                Endpoint::from_socket(seg.dst),
            ));
        }
    }

    /// Ask the lookups due from the frames just read. Asked after the whole read, not at each frame: a connection
    /// that ended within it has no socket left to find (out of the table, or TIME_WAIT with no inode), so its
    /// client end is not asked at all and its server end only for the listener of its port.
    pub fn ask_due(&mut self, lookups: &mut Lookups) {
        for (a, b) in std::mem::take(&mut self.due) {
            let Some((c, x)) = self.tracker.get_mut(a, b) else {
                continue;
            };
            let ended = live::ended(c);
            for side in [Side::Client, Side::Server] {
                if x.process[side.index()] != Process::Due {
                    continue;
                }
                let (local, remote) = match side {
                    Side::Client => (c.client.socket(), c.server.socket()),
                    Side::Server => (c.server.socket(), c.client.socket()),
                };
                x.process[side.index()] = if ended && side == Side::Client {
                    Process::Found(Found::Ended)
                } else if lookups.ask(Ask {
                    local,
                    remote,
                    ended,
                }) {
                    Process::Asked
                } else {
                    Process::Refused
                };
            }
        }
    }

    /// Kernel events, to their connections (or to wait for them).
    pub fn kernel(&mut self, events: Vec<KernelEvent>) {
        for e in events {
            let (a, b) = (
                Endpoint::from_socket(e.what.src()),
                Endpoint::from_socket(e.what.dst()),
            );
            match self.tracker.get_mut(a, b) {
                Some((_, x)) => x.add_kernel(e),
                None if self.pending.len() < PENDING_MAX => self.pending.push_back(e),
                None => {}
            }
        }
    }

    /// A lookup's answer, to its connection.
    pub fn answer(&mut self, (ask, found): procmap::Answer) {
        let only = self.only_pid;
        let (a, b) = (
            Endpoint::from_socket(ask.local),
            Endpoint::from_socket(ask.remote),
        );
        // the open connections first (a hash lookup); those held, a list, only for an answer that came late
        let Some((c, x)) = self.tracker.get_mut(a, b).or_else(|| {
            self.holding
                .get_mut(&pair(a, b))
                .map(|(g, _)| (&g.conn, &mut g.extra))
        }) else {
            return;
        };
        let Some(side) = conn::side_of(c, ask.local) else {
            return;
        };
        if let (Some(pid), Found::Holder(o) | Found::Listener(o)) = (only, &found)
            && procmap::descends_from(o.pid, pid)
        {
            x.mine = true;
        }
        x.process[side.index()] = Process::Found(found);
    }

    /// True while a lookup of an open connection has no answer yet.
    pub fn waiting_for_answers(&mut self) -> bool {
        self.tracker.iter_mut().any(|(_, x)| !x.settled())
            || self.holding.values().any(|(g, _)| !g.extra.settled())
    }

    /// Report what is due at `now`; attach kernel events whose connection came since.
    pub fn tick(&mut self, now: TimestampNs, out: &mut dyn Write) -> io::Result<()> {
        let waiting = std::mem::take(&mut self.pending);
        self.kernel(
            waiting
                .into_iter()
                .filter(|e| now - e.ts < PENDING_FOR)
                .collect(),
        );
        let settle = SETTLE.as_nanos() as TimestampNs;
        for g in self.tracker.due(now, settle, self.idle) {
            if g.extra.settled() || self.holding.len() >= HOLD_MAX {
                self.report(g, out)?;
            } else {
                // an earlier connection of the same 4-tuple still held goes out now, not lost
                let k = pair(g.conn.client, g.conn.server);
                if let Some((earlier, _)) = self.holding.insert(k, (g, now + HOLD_FOR)) {
                    self.report(earlier, out)?;
                }
            }
        }
        let ready: Vec<_> = self
            .holding
            .iter()
            .filter(|(_, (g, until))| g.extra.settled() || *until <= now)
            .map(|(k, _)| *k)
            .collect();
        let mut ready: Vec<_> = ready
            .into_iter()
            .filter_map(|k| self.holding.remove(&k))
            .collect();
        ready.sort_by_key(|(g, _)| g.conn.id);
        for (g, _) in ready {
            self.report(g, out)?;
        }
        if let Some((f, w)) = &mut self.write {
            w.write_to(f)?;
            f.flush()?;
        }
        Ok(())
    }

    /// One connection that left: its line (and timeline), counted in the totals.
    fn report(&mut self, g: Gone<Extra>, out: &mut dyn Write) -> io::Result<()> {
        let c = &g.conn;
        if self.only_pid.is_some() && !g.extra.mine {
            return Ok(());
        }
        if !self.selection.shows(c) {
            return Ok(());
        }
        let local = [c.client.ip, c.server.ip].map(|ip| self.loopback || self.local.contains(&ip));
        let mut why = conn::why(c, &g.extra, local);
        match g.left {
            Left::Expired => {
                why.push(format!(
                    "no segment for {} s (--idle-timeout): it may still be open",
                    self.idle / 1_000_000_000
                ));
                self.totals.expired += 1;
            }
            Left::Open => self.totals.open += 1,
            Left::Ended | Left::Reused => count(&mut self.totals.endings, c.ending().text()),
        }
        if c.first_rst.is_some() {
            let reason = match conn::reset_reason(c, &g.extra) {
                Some(r) => r,
                None if c.first_rst.is_some_and(|s| !local[s.index()]) => {
                    "none: sent by the remote peer".into()
                }
                None => "not traced".into(),
            };
            count(&mut self.totals.resets, &reason);
        }
        let processes = [0, 1].map(|i| match &g.extra.process[i] {
            Process::Asked => Some("? (lookup not answered in time)".into()),
            // a local socket the table no longer had: it closed before the lookup (a refused connect's lives µs)
            Process::Found(Found::NotLocal) if local[i] => {
                Some("? (its socket closed before it was looked up)".into())
            }
            p => conn::process_text(p),
        });
        let row = WatchRow {
            device: &self.device,
            conn: c,
            left: g.left.name(),
            processes,
            why: &why,
        };
        self.rows.row(out, &row)?;
        if let Some(printer) = &self.timeline
            && c.first_rst.is_some()
        {
            let sides = Sides {
                a: c.client.socket(),
                b: c.server.socket(),
                a_label: format!("client {}", c.client.socket()),
                b_label: format!("server {}", c.server.socket()),
            };
            let t = timeline::build_with_kernel(
                sides,
                &[],
                &g.extra.segments,
                &g.extra.kernel,
                States::Inferred,
            );
            // no IP header facts are kept live: the account weighs the segments alone
            let account = account::account(&t, &[]);
            printer.connection(
                out,
                &ConnView {
                    file: &self.device,
                    conn: c,
                    timeline: &t,
                    account: &account,
                },
            )?;
        }
        Ok(())
    }

    /// The stop: every connection still here reported (ended ones as ended, the others as open), then the totals.
    pub fn finish(
        &mut self,
        out: &mut dyn Write,
        stopped_by: String,
        ran: Duration,
        drops: u32,
        trace_lost: Option<u64>,
        lookups_refused: u64,
    ) -> io::Result<(WatchTotals, Option<String>)> {
        let waiting = std::mem::take(&mut self.pending);
        self.kernel(waiting.into_iter().collect());
        let mut held: Vec<_> = self.holding.drain().map(|(_, (g, _))| g).collect();
        held.sort_by_key(|g| g.conn.id);
        for g in held.into_iter().chain(self.tracker.drain()) {
            self.report(g, out)?;
        }
        if let Some((f, w)) = &mut self.write {
            w.write_to(f)?;
            f.flush()?;
        }
        let t = &mut self.totals;
        t.stopped_by = stopped_by;
        t.seconds = ran.as_secs_f64();
        t.pcap_drops = drops;
        t.trace_lost = trace_lost;
        t.lookups_refused = lookups_refused;
        for v in [&mut t.endings, &mut t.resets] {
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        let aside = self.rows.totals(out, t)?;
        Ok((t.clone(), aside))
    }
}

/// A 4-tuple in one order whichever way round its ends are given.
fn pair(a: Endpoint, b: Endpoint) -> (Endpoint, Endpoint) {
    if a <= b { (a, b) } else { (b, a) }
}

fn count(v: &mut Vec<(String, u64)>, what: &str) {
    match v.iter_mut().find(|(k, _)| k == what) {
        Some((_, n)) => *n += 1,
        None => v.push((what.to_string(), 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{RowsFormat, Style};
    use etherparse::PacketBuilder;

    fn state() -> State {
        let mut config = Config {
            device: "test0".into(),
            filter: None,
            selection: Selection::default(),
            kernel: false,
            pid: None,
            program: Vec::new(),
            idle_timeout: Duration::from_secs(300),
            timeline: None,
            rows: WatchPrinter::new(RowsFormat::Json, Style::PLAIN),
            write: None,
            user: None,
            drop_privileges: false,
        };
        State::new(&mut config, LinkType::RawIp, None)
    }

    /// A segment of the connection 10.0.0.1:`client` ⇄ 10.0.0.2:`server`, sent by the client when `by_client`.
    fn frame(client: u16, server: u16, by_client: bool, flags: &str) -> Vec<u8> {
        let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut b = if by_client {
            PacketBuilder::ipv4(c, s, 64).tcp(client, server, 1000, 1000)
        } else {
            PacketBuilder::ipv4(s, c, 64).tcp(server, client, 1000, 1000)
        };
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'A' => b.ack(1),
                'R' => b.rst(),
                _ => unreachable!(),
            };
        }
        let mut out = Vec::new();
        b.write(&mut out, b"").unwrap();
        out
    }

    /// What was learned of the process on each end of 10.0.0.1:`client` ⇄ 10.0.0.2:`server`.
    fn processes(st: &mut State, client: u16, server: u16) -> [Process; 2] {
        let (a, b) = (
            Endpoint::from_socket(format!("10.0.0.1:{client}").parse().unwrap()),
            Endpoint::from_socket(format!("10.0.0.2:{server}").parse().unwrap()),
        );
        st.tracker.get_mut(a, b).unwrap().1.process.clone()
    }

    #[test]
    fn a_connection_that_ended_within_the_read_has_only_its_listener_asked() {
        let mut st = state();
        let (mut lookups, asked) = Lookups::unserved();
        // in one read: 40000 → 80 is reset by the server; 40001 → 81 stays open
        let read = [
            (40000, 80, true, "S"),
            (40000, 80, false, "SA"),
            (40000, 80, true, "A"),
            (40000, 80, false, "RA"),
            (40001, 81, true, "S"),
            (40001, 81, false, "SA"),
            (40001, 81, true, "A"),
        ];
        for (i, (c, s, by_client, flags)) in read.into_iter().enumerate() {
            let f = frame(c, s, by_client, flags);
            st.frame(i as TimestampNs, &f, f.len() as u32);
        }
        assert!(
            asked.try_recv().is_err(),
            "nothing is asked before the read is in"
        );
        st.ask_due(&mut lookups);
        let mut seen: Vec<(u16, u16, bool)> = asked
            .try_iter()
            .map(|a| (a.local.port(), a.remote.port(), a.ended))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            vec![(80, 40000, true), (81, 40001, false), (40001, 81, false)],
            "the ended connection's client end is not asked, its server end only for the listener"
        );
        assert_eq!(
            processes(&mut st, 40000, 80),
            [Process::Found(Found::Ended), Process::Asked]
        );
        assert_eq!(
            processes(&mut st, 40001, 81),
            [Process::Asked, Process::Asked]
        );
        assert!(!st.tracker.iter_mut().all(|(_, x)| x.settled()));
    }
}
