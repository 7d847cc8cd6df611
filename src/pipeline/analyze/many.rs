//! Several capture files read at once, a thread each (as many as there are cores), their reports handed on in the
//! order the files were given: the output is the same as reading them one by one, only sooner.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use crate::capfile::{CaptureReader, OpenError, Source};
use crate::pipeline::Feedback;
use crate::pipeline::analyze::read::analyze_with;
use crate::track::report::FileReport;
use crate::track::select::Selection;
use crate::wire::bpf::Bpf;

/// The notes a worker's reading makes, kept to be told in the files' order.
#[derive(Default)]
struct Kept(Vec<String>);

impl Feedback for Kept {
    fn note(&mut self, line: &str) {
        self.0.push(line.to_string());
    }
}

/// What to keep of each file, as [`analyze_with`] takes it.
pub(super) struct Keep<'a> {
    pub conns: &'a HashSet<u32>,
    pub every: bool,
    pub shown: Option<&'a Selection>,
}

/// Read every input on a thread per filter in `filters` (each thread matching frames with its own: `--filter`'s
/// program, or none) and call `each` with each report and the notes its reading made, in the inputs' order. An
/// error from `each` stops the reading of files not yet begun and is returned.
pub(super) fn in_order<E>(
    inputs: Vec<(String, Result<Source, OpenError>)>,
    keep: &Keep,
    filters: Vec<Option<Bpf>>,
    mut each: impl FnMut(FileReport, Vec<String>) -> Result<(), E>,
) -> Result<(), E> {
    let count = inputs.len();
    let queue = Mutex::new(inputs.into_iter().enumerate().collect::<VecDeque<_>>());
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, FileReport, Vec<String>)>();
    std::thread::scope(|scope| {
        for mut bpf in filters.into_iter().take(count.max(1)) {
            let tx = tx.clone();
            let (queue, stop) = (&queue, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let next = queue.lock().map(|mut q| q.pop_front());
                    let Ok(Some((i, (name, source)))) = next else {
                        break;
                    };
                    let mut notes = Kept::default();
                    let opened = source.and_then(CaptureReader::read_from);
                    let r = analyze_with(
                        &name,
                        opened,
                        keep.conns,
                        keep.every,
                        bpf.as_mut(),
                        keep.shown,
                        &mut notes,
                    );
                    if tx.send((i, r, notes.0)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        for (i, r, notes) in rx.iter() {
            waiting.insert(i, (r, notes));
            while let Some((r, notes)) = waiting.remove(&next) {
                next += 1;
                if let Err(e) = each(r, notes) {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports come in the order given, whatever order the threads finish in, with each file's own notes; an
    /// error from the consumer stops there.
    #[test]
    fn reports_come_in_the_order_given() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/captures");
        let mut names: Vec<String> = [
            "abrupt.pcapng",
            "analyze/zero-window.pcap",
            "no-such-file.pcap",
            "analyze/refused.pcap",
            "drain.pcapng",
            "analyze/dead-peer.pcap",
        ]
        .iter()
        .map(|n| format!("{dir}/{n}"))
        .collect();
        names.extend(names.clone());
        let inputs = || names.iter().map(|n| (n.clone(), Source::open(n))).collect();
        let conns = HashSet::new();
        let keep = Keep {
            conns: &conns,
            every: false,
            shown: None,
        };
        let none = |n| (0..n).map(|_| None).collect::<Vec<Option<Bpf>>>();
        let mut seen = Vec::new();
        let ok: Result<(), ()> = in_order(inputs(), &keep, none(4), |r, _| {
            seen.push((r.name.clone(), r.open_error.is_some(), r.conns.len()));
            Ok(())
        });
        assert!(ok.is_ok());
        let got: Vec<&String> = seen.iter().map(|(n, _, _)| n).collect();
        assert_eq!(got, names.iter().collect::<Vec<_>>());
        assert!(
            seen[2].1,
            "the missing file is reported as such, in its place"
        );
        assert_eq!(seen[3].2, 1, "refused.pcap has one connection");

        let mut handed = 0;
        let stopped = in_order(inputs(), &keep, none(2), |_, _| {
            handed += 1;
            if handed == 3 { Err("stop") } else { Ok(()) }
        });
        assert_eq!(stopped, Err("stop"));
        assert_eq!(handed, 3, "nothing is handed on after an error");
    }

    /// With a filter, each thread matches frames with its own copy: the connections it matched are those one
    /// filter matches reading the files one after another.
    #[test]
    fn a_filter_matches_the_same_on_every_thread() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/analyze");
        let names: Vec<String> = [
            "dead-peer",
            "refused",
            "keepalive-race",
            "self-connect",
            "unread",
        ]
        .iter()
        .map(|n| format!("{dir}/{n}.pcap"))
        .collect();
        let conns = HashSet::new();
        let keep = Keep {
            conns: &conns,
            every: false,
            shown: None,
        };
        let expr = "tcp[tcpflags] & tcp-rst != 0";
        let matched = |r: &FileReport| r.conns.iter().map(|c| c.bpf_matched).collect::<Vec<_>>();
        let mut one = Bpf::new(expr).unwrap();
        let apart: Vec<Vec<bool>> = names
            .iter()
            .map(|n| {
                let opened = Source::open(n).and_then(CaptureReader::read_from);
                let r = analyze_with(
                    n,
                    opened,
                    &conns,
                    false,
                    Some(&mut one),
                    None,
                    &mut Kept::default(),
                );
                matched(&r)
            })
            .collect();
        assert!(apart.iter().flatten().any(|&m| m) && apart.iter().flatten().any(|&m| !m));
        let filters = (0..3).map(|_| Some(Bpf::new(expr).unwrap())).collect();
        let inputs = names.iter().map(|n| (n.clone(), Source::open(n))).collect();
        let mut together = Vec::new();
        let ok: Result<(), ()> = in_order(inputs, &keep, filters, |r, _| {
            together.push(matched(&r));
            Ok(())
        });
        assert!(ok.is_ok());
        assert_eq!(together, apart);
    }
}
