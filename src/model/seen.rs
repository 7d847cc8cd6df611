//! What a live run has seen so far, as it arrives: the segments its capture decoded and the kernel events its
//! trace read. The capture's and the trace's reading threads add to it; the scenario's player waits on it
//! (`wait B sends FIN`, `wait A kernel receives RST`). A view while the run plays, not the record: the timeline is
//! still built from what the capture and the trace hand back at their end.
//!
//! It also says which sources feed it, so that a wait no source can ever meet is refused before the run starts
//! instead of timing out.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::model::kernel::KernelEventKind;
use crate::model::segment::Segment;

/// A shared, thread-safe view; clones share one store.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<Mutex<Store>>);

#[derive(Debug, Default)]
struct Store {
    wire: bool,
    kernel: bool,
    segments: Vec<Segment>,
    events: Vec<KernelEventKind>,
}

impl Seen {
    pub fn new() -> Seen {
        Seen::default()
    }

    /// A poisoned lock only means a reader panicked mid-push: what it holds is still whole values.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A capture feeds this view from now on.
    pub fn set_wire(&self) {
        self.store().wire = true;
    }

    /// The kernel's trace feeds this view from now on.
    pub fn set_kernel(&self) {
        self.store().kernel = true;
    }

    /// Whether a capture feeds this view.
    pub fn has_wire(&self) -> bool {
        self.store().wire
    }

    /// Whether the kernel's trace feeds this view.
    pub fn has_kernel(&self) -> bool {
        self.store().kernel
    }

    /// A segment the capture has just decoded.
    pub fn add_segment(&self, s: &Segment) {
        // the waits look at addresses and flags, not at the bytes
        let s = Segment {
            payload: Vec::new(),
            ..s.clone()
        };
        self.store().segments.push(s);
    }

    /// Events the trace has just read.
    pub fn add_events<'e>(&self, events: impl IntoIterator<Item = &'e KernelEventKind>) {
        let mut store = self.store();
        store.events.extend(events.into_iter().cloned());
    }

    /// The segments seen so far that `keep` keeps.
    pub fn segments(&self, keep: impl Fn(&Segment) -> bool) -> Vec<Segment> {
        self.store()
            .segments
            .iter()
            .filter(|s| keep(s))
            .cloned()
            .collect()
    }

    /// The kernel events seen so far that `keep` keeps.
    pub fn events(&self, keep: impl Fn(&KernelEventKind) -> bool) -> Vec<KernelEventKind> {
        self.store()
            .events
            .iter()
            .filter(|e| keep(e))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::segment::{SeqNumber, TcpFlags};

    #[test]
    fn clones_share_what_is_added_from_another_thread() {
        let seen = Seen::new();
        assert!(!seen.has_wire() && !seen.has_kernel());
        let feeder = seen.clone();
        std::thread::spawn(move || {
            feeder.set_wire();
            feeder.add_segment(&Segment {
                ts: 1,
                src: "127.0.0.1:1".parse().unwrap(),
                dst: "127.0.0.1:2".parse().unwrap(),
                flags: TcpFlags(TcpFlags::FIN | TcpFlags::ACK),
                seq: SeqNumber(1),
                ack: SeqNumber(1),
                window: 1,
                len: 3,
                payload: b"abc".to_vec(),
                ip_len: 43,
            });
        })
        .join()
        .unwrap();
        assert!(seen.has_wire());
        let fins = seen.segments(|s| s.flags.fin());
        assert_eq!(fins.len(), 1);
        assert!(fins[0].payload.is_empty(), "the bytes are not kept");
        assert!(seen.segments(|s| s.flags.rst()).is_empty());
        assert!(seen.events(|_| true).is_empty());
    }
}
