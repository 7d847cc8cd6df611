//! Writing many rows fast: the rows of a summary are formatted in parts, every other part on a second thread, and
//! written out in order as they are made, so a million rows never sit in memory whole.

use std::io::{self, Write};

use crate::track::conn::Conn;

/// Rows are formatted in parts of this many connections (~1.5 MB of text); with more than one part, a second
/// thread formats every other part while this one formats and writes the rest, in order.
pub const ROWS_PER_PART: usize = 8192;

/// Format `row` for every connection and write the text to `out` in order, on two threads when there are many.
pub fn write_rows(
    conns: &[&Conn],
    row: &(dyn Fn(&mut String, &Conn) + Sync),
    out: &mut dyn Write,
) -> io::Result<()> {
    let parts: Vec<&[&Conn]> = conns.chunks(ROWS_PER_PART).collect();
    let format = |part: &[&Conn], buf: &mut String| {
        buf.clear();
        for c in part {
            row(buf, c);
        }
    };
    let mut mine = String::new();
    if parts.len() < 2 {
        for part in &parts {
            format(part, &mut mine);
            out.write_all(mine.as_bytes())?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<String>(2);
        let (free_tx, free_rx) = std::sync::mpsc::channel::<String>();
        let theirs = &parts;
        scope.spawn(move || {
            for part in theirs.iter().skip(1).step_by(2) {
                let mut buf = free_rx.try_recv().unwrap_or_default();
                format(part, &mut buf);
                if done_tx.send(buf).is_err() {
                    return;
                }
            }
        });
        for (k, part) in parts.iter().enumerate() {
            if k % 2 == 0 {
                format(part, &mut mine);
                out.write_all(mine.as_bytes())?;
            } else {
                let buf = done_rx
                    .recv()
                    .map_err(|_| io::Error::other("the formatting thread stopped"))?;
                out.write_all(buf.as_bytes())?;
                let _ = free_tx.send(buf);
            }
        }
        Ok(())
    })
}
