//! Line-buffered, prefixed guest output.

use crate::ConsoleSink;
use core::fmt;

/// The longest line [`LineWriter`] buffers; a longer one is cut into several output lines.
pub const LINE_MAX: usize = 256;
/// The longest prefix [`LineWriter`] keeps; a longer one is cut (at a character boundary).
pub const PREFIX_MAX: usize = 32;

/// Prefix + line + the `'\n'` that ends it, so a line goes to the sink in one call.
const BUF: usize = PREFIX_MAX + LINE_MAX + 1;

/// A [`ConsoleSink`] that turns a guest's byte stream into prefixed lines.
///
/// Every output line is `prefix + text + '\n'`, written to the inner sink with a single
/// [`ConsoleSink::write_bytes`] call. A line is emitted
///
/// * on `'\n'`: the carriage returns before it (a tty's `ONLCR` turns `\n` into `\r\n`) are
///   dropped; empty lines are kept;
/// * when [`LINE_MAX`] bytes are buffered: the text is cut there (but never inside a UTF-8
///   sequence: an incomplete one at the end moves to the next line);
/// * on [`flush`](LineWriter::flush) (a prompt without a newline, a guest that went idle). If
///   the next byte after a flush is `'\n'` (or `"\r\n"`), it only ends the line that was
///   flushed and does not produce an empty line.
///
/// Other bytes, control characters and escape sequences included, pass through unchanged.
pub struct LineWriter<S> {
    sink: S,
    buf: [u8; BUF],
    prefix_len: usize,
    len: usize,
    /// A partial line was flushed and nothing but `'\r'` came since.
    after_flush: bool,
    lines: u64,
}

impl<S: ConsoleSink> LineWriter<S> {
    /// A writer whose lines start with `prefix` (at most [`PREFIX_MAX`] bytes are kept).
    pub fn new(prefix: &str, sink: S) -> Self {
        let mut w = LineWriter {
            sink,
            buf: [0; BUF],
            prefix_len: 0,
            len: 0,
            after_flush: false,
            lines: 0,
        };
        let mut c = PrefixCursor { w: &mut w };
        // PrefixCursor never fails; it truncates.
        let _ = fmt::Write::write_str(&mut c, prefix);
        w
    }

    /// A writer for the guest console `name`: lines start with `[guest NAME] `.
    pub fn guest(name: &str, sink: S) -> Self {
        let mut w = LineWriter::new("", sink);
        let mut c = PrefixCursor { w: &mut w };
        // The name is cut so that "] " always fits.
        let room = PREFIX_MAX
            .saturating_sub("[guest ".len())
            .saturating_sub("] ".len());
        let _ = fmt::Write::write_str(&mut c, "[guest ");
        let _ = fmt::Write::write_str(&mut c, utf8_prefix(name, room));
        let _ = fmt::Write::write_str(&mut c, "] ");
        w
    }

    /// The prefix every line starts with.
    pub fn prefix(&self) -> &[u8] {
        self.buf.get(..self.prefix_len).unwrap_or_default()
    }

    /// Bytes buffered for the current (not yet emitted) line.
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Lines emitted so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The inner sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The inner sink, mutably.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// The inner sink; a partial line still buffered is lost (call
    /// [`flush`](Self::flush) first to keep it).
    pub fn into_inner(self) -> S {
        self.sink
    }

    /// Adds one byte of guest output.
    pub fn push(&mut self, b: u8) {
        if self.after_flush {
            match b {
                b'\r' => return,
                b'\n' => {
                    self.after_flush = false;
                    return;
                }
                _ => self.after_flush = false,
            }
        }
        if b == b'\n' {
            self.trim_cr();
            self.emit(self.len);
            return;
        }
        // prefix_len <= PREFIX_MAX and len <= LINE_MAX (emitted when it gets there): the
        // index stays inside `buf`, and the sums below cannot overflow.
        if let Some(slot) = self.buf.get_mut(self.prefix_len.saturating_add(self.len)) {
            *slot = b;
            self.len = self.len.saturating_add(1);
        }
        if self.len >= LINE_MAX {
            let keep = incomplete_utf8_tail(self.line());
            self.emit(self.len.saturating_sub(keep));
        }
    }

    /// Emits the partial line, if there is one.
    pub fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        self.trim_cr();
        self.emit(self.len);
        self.after_flush = true;
    }

    fn line(&self) -> &[u8] {
        self.buf
            .get(self.prefix_len..self.prefix_len.saturating_add(self.len))
            .unwrap_or_default()
    }

    fn trim_cr(&mut self) {
        while let Some(last) = self.len.checked_sub(1)
            && self.buf.get(self.prefix_len.saturating_add(last)) == Some(&b'\r')
        {
            self.len = last;
        }
    }

    /// Writes prefix + the first `n` line bytes + '\n'; the rest of the line (at most 3
    /// bytes of an incomplete UTF-8 sequence) moves to the start of the next one.
    fn emit(&mut self, n: usize) {
        let n = n.min(self.len);
        // prefix_len <= PREFIX_MAX, n <= len <= LINE_MAX: no sum here overflows.
        let end = self.prefix_len.saturating_add(n);
        let tail_start = end;
        let tail_end = self.prefix_len.saturating_add(self.len);
        let mut tail = [0u8; 4];
        let tail_len = tail_end.saturating_sub(tail_start).min(tail.len());
        if let (Some(dst), Some(src)) = (
            tail.get_mut(..tail_len),
            self.buf
                .get(tail_start..tail_start.saturating_add(tail_len)),
        ) {
            dst.copy_from_slice(src);
        }
        if let Some(slot) = self.buf.get_mut(end) {
            *slot = b'\n';
        }
        if let Some(out) = self.buf.get(..end.saturating_add(1)) {
            self.sink.write_bytes(out);
        }
        self.lines = self.lines.wrapping_add(1);
        self.len = 0;
        for &b in tail.get(..tail_len).unwrap_or_default() {
            if let Some(slot) = self.buf.get_mut(self.prefix_len.saturating_add(self.len)) {
                *slot = b;
                self.len = self.len.saturating_add(1);
            }
        }
    }
}

impl<S: ConsoleSink> ConsoleSink for LineWriter<S> {
    fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }

    /// Emits the partial line and flushes the inner sink.
    fn flush(&mut self) {
        LineWriter::flush(self);
        self.sink.flush();
    }
}

impl<S> fmt::Debug for LineWriter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineWriter")
            .field(
                "prefix",
                &self
                    .buf
                    .get(..self.prefix_len)
                    .map(core::str::from_utf8)
                    .and_then(Result::ok),
            )
            .field("pending", &self.len)
            .field("lines", &self.lines)
            .finish()
    }
}

/// Appends to a writer's prefix while there is room (only used before any line byte).
struct PrefixCursor<'a, S> {
    w: &'a mut LineWriter<S>,
}

impl<S> fmt::Write for PrefixCursor<'_, S> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = PREFIX_MAX.saturating_sub(self.w.prefix_len);
        let s = utf8_prefix(s, room).as_bytes();
        let at = self.w.prefix_len;
        // at + s.len() <= PREFIX_MAX.
        if let Some(dst) = self.w.buf.get_mut(at..at.saturating_add(s.len())) {
            dst.copy_from_slice(s);
            self.w.prefix_len = at.saturating_add(s.len());
        }
        Ok(())
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends at a character boundary.
fn utf8_prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    // 0 is always a boundary: the loop ends there at the latest.
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    s.get(..end).unwrap_or_default()
}

/// How many bytes at the end of `s` are the start of a UTF-8 sequence that `s` does not
/// complete (0..=3).
fn incomplete_utf8_tail(s: &[u8]) -> usize {
    for i in 1..=s.len().min(3) {
        // i <= s.len().
        let Some(&b) = s.get(s.len().wrapping_sub(i)) else {
            return 0;
        };
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: look further back for the lead byte
        }
        let needed = match b {
            0xF0..=0xF7 => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => return 0, // ASCII or not UTF-8 at all: nothing to carry
        };
        return if i < needed { i } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_tail() {
        assert_eq!(incomplete_utf8_tail(b"abc"), 0);
        assert_eq!(incomplete_utf8_tail("aé".as_bytes()), 0);
        assert_eq!(incomplete_utf8_tail(&"aé".as_bytes()[..2]), 1);
        assert_eq!(incomplete_utf8_tail(&"a€".as_bytes()[..3]), 2);
        assert_eq!(incomplete_utf8_tail(&"a😀".as_bytes()[..4]), 3);
        assert_eq!(incomplete_utf8_tail("a😀".as_bytes()), 0);
        assert_eq!(incomplete_utf8_tail(&[0x80, 0x80, 0x80]), 0);
        assert_eq!(incomplete_utf8_tail(&[]), 0);
    }

    #[test]
    fn utf8_prefix_cuts_at_boundaries() {
        assert_eq!(utf8_prefix("héllo", 2), "h");
        assert_eq!(utf8_prefix("héllo", 3), "hé");
        assert_eq!(utf8_prefix("abc", 10), "abc");
    }
}
