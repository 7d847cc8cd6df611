//! The bytes of a capture, from memory or from a stream read in large blocks.
//!
//! Contract: [`Input::peek`] and [`Input::data`] never panic; callers that index into what they return check the
//! length first, with [`Input::ensure`] (which makes bytes available) or [`Input::available`]. An I/O error comes
//! back from `ensure` as it happened; nothing is retried but `Interrupted`.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes asked of a stream at a time: large, so that reading costs a handful of system calls per gigabyte.
const BLOCK: usize = 8 << 20;

/// Where the bytes of a capture come from.
enum Backing {
    /// Bytes held in memory (tests, fuzzing).
    Owned(Vec<u8>),
    /// A stream read in blocks: `buf[pos..end]` is unread, `buf[0]` is at input offset `base`.
    Stream {
        reader: Box<dyn Read + Send>,
        buf: Vec<u8>,
        end: usize,
        eof: bool,
    },
}

/// A window over the input that hands out byte slices without copying when it can.
pub(super) struct Input {
    backing: Backing,
    /// The first unread byte, as an index into [`Input::data`].
    pub(super) pos: usize,
    /// Input offset of `pos == 0` (only moves for streams, when consumed bytes are dropped from the buffer).
    base: u64,
}

impl Input {
    /// Bytes held in memory.
    pub(super) fn owned(data: Vec<u8>) -> Input {
        Input {
            backing: Backing::Owned(data),
            pos: 0,
            base: 0,
        }
    }

    /// A stream, read in blocks as it is needed.
    pub(super) fn stream(reader: Box<dyn Read + Send>) -> Input {
        Input {
            backing: Backing::Stream {
                reader,
                buf: Vec::new(),
                end: 0,
                eof: false,
            },
            pos: 0,
            base: 0,
        }
    }

    /// What is in the buffer, read and unread; `pos` indexes into it.
    pub(super) fn data(&self) -> &[u8] {
        match &self.backing {
            Backing::Owned(v) => v,
            Backing::Stream { buf, end, .. } => &buf[..*end],
        }
    }

    /// Input offset of the first unread byte.
    pub(super) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Make `n` unread bytes available; `Ok(false)` when the input ends first (what is there stays readable).
    pub(super) fn ensure(&mut self, n: usize) -> io::Result<bool> {
        let Backing::Stream {
            reader,
            buf,
            end,
            eof,
        } = &mut self.backing
        else {
            return Ok(self.data().len() - self.pos >= n);
        };
        if *end - self.pos >= n {
            return Ok(true);
        }
        // Drop what was consumed, then read until `n` bytes are there or the stream ends.
        if self.pos > 0 {
            buf.copy_within(self.pos..*end, 0);
            *end -= self.pos;
            self.base += self.pos as u64;
            self.pos = 0;
        }
        let want = n.max(BLOCK);
        if buf.len() < want {
            buf.resize(want, 0);
        }
        while *end < n && !*eof {
            match reader.read(&mut buf[*end..]) {
                Ok(0) => *eof = true,
                Ok(k) => *end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(*end >= n)
    }

    /// Unread bytes in the buffer.
    pub(super) fn available(&self) -> usize {
        self.data().len() - self.pos
    }

    /// Up to `n` unread bytes (fewer at the end of the input).
    pub(super) fn peek(&self, n: usize) -> &[u8] {
        let d = self.data();
        &d[self.pos..(self.pos + n).min(d.len())]
    }
}

/// Counts bytes as they are read, so progress can follow a compressed file.
pub(super) struct Counting<R> {
    pub(super) inner: R,
    pub(super) count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
