//! The VMM's log-line format.
//!
//! VMM code names the vCPU a message is about by starting the message with `[vcpuN] ` (the
//! `Display` of `hypervisor::VcpuId` inside brackets: `log::warn!("[{vcpu}] ...")`). The
//! formatter moves it into the header:
//!
//! ```text
//! log::warn!("[{vcpu}] unhandled system register ...")  ->  [vmm WARN vcpu1] unhandled system register ...
//! log::info!("stage-2 mapped")                          ->  [vmm INFO] stage-2 mapped
//! ```
//!
//! Formatting streams into the writer: nothing is allocated, so the logger may run anywhere.

use core::fmt::{self, Write};
use log::{Level, Record};

/// Writes `record` as `[vmm LEVEL] message` or `[vmm LEVEL vcpuN] message`, without a
/// trailing newline.
pub fn format_record(out: &mut dyn Write, record: &Record<'_>) -> fmt::Result {
    format_message(out, record.level(), *record.args())
}

/// [`format_record`] for a level and message that are not in a [`Record`].
pub fn format_message(out: &mut dyn Write, level: Level, args: fmt::Arguments<'_>) -> fmt::Result {
    let mut w = VcpuSplitter {
        out,
        level,
        state: State::Detect,
        held: [0; HELD],
        held_len: 0,
    };
    w.write_fmt(args)?;
    w.finish()
}

/// A log line as a `Display` value: `format!("{}", LogLine::new(level, args))`.
#[derive(Clone, Copy, Debug)]
pub struct LogLine<'a> {
    level: Level,
    args: fmt::Arguments<'a>,
}

impl<'a> LogLine<'a> {
    /// The line for `level` and `args`.
    pub fn new(level: Level, args: fmt::Arguments<'a>) -> Self {
        LogLine { level, args }
    }

    /// The line for `record`.
    pub fn from_record(record: &Record<'a>) -> Self {
        LogLine {
            level: record.level(),
            args: *record.args(),
        }
    }
}

impl fmt::Display for LogLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_message(f, self.level, self.args)
    }
}

const TAG: &[u8] = b"[vcpu";
/// "[vcpu" + up to 3 digits + "] ".
const HELD: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Still matching the start of the message against `[vcpuN] `.
    Detect,
    /// Header written: everything else passes through.
    Pass,
}

struct VcpuSplitter<'a> {
    out: &'a mut dyn Write,
    level: Level,
    state: State,
    /// The message bytes matched so far (ASCII only: they matched the pattern).
    held: [u8; HELD],
    held_len: usize,
}

enum Step {
    More,
    Matched,
    Mismatch,
}

impl VcpuSplitter<'_> {
    fn held(&self) -> &[u8] {
        self.held.get(..self.held_len).unwrap_or_default()
    }

    /// Whether `held + b` can still become `[vcpuN] `.
    fn step(&self, b: u8) -> Step {
        let n = self.held_len;
        if let Some(&want) = TAG.get(n) {
            return if b == want {
                Step::More
            } else {
                Step::Mismatch
            };
        }
        // TAG.get(n) failed: n >= TAG.len().
        let digits = n.saturating_sub(TAG.len());
        let last = self.held().last().copied();
        match b {
            b'0'..=b'9' if last != Some(b']') && digits < 3 => Step::More,
            b']' if digits >= 1 && last.is_some_and(|c| c.is_ascii_digit()) => Step::More,
            b' ' if last == Some(b']') => Step::Matched,
            _ => Step::Mismatch,
        }
    }

    fn header(&mut self, vcpu: Option<&[u8]>) -> fmt::Result {
        self.out.write_str("[vmm ")?;
        self.out.write_str(self.level.as_str())?;
        if let Some(digits) = vcpu.and_then(|d| core::str::from_utf8(d).ok()) {
            self.out.write_str(" vcpu")?;
            self.out.write_str(digits)?;
        }
        self.out.write_str("] ")
    }

    /// Writes the header without a vCPU and the held bytes as message text.
    fn give_up(&mut self) -> fmt::Result {
        self.state = State::Pass;
        self.header(None)?;
        let held = self.held;
        let text = held
            .get(..self.held_len)
            .and_then(|h| core::str::from_utf8(h).ok())
            .unwrap_or_default();
        self.out.write_str(text)
    }

    fn finish(&mut self) -> fmt::Result {
        if self.state == State::Detect {
            self.give_up()?;
        }
        Ok(())
    }
}

impl Write for VcpuSplitter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.state == State::Pass {
            return self.out.write_str(s);
        }
        for (i, b) in s.bytes().enumerate() {
            match self.step(b) {
                Step::More => {
                    if let Some(slot) = self.held.get_mut(self.held_len) {
                        *slot = b;
                        // get_mut succeeded: held_len < held.len().
                        self.held_len = self.held_len.saturating_add(1);
                    }
                }
                Step::Matched => {
                    self.state = State::Pass;
                    let held = self.held;
                    // Digits sit between "[vcpu" and the final ']'.
                    let digits = held.get(TAG.len()..self.held_len.saturating_sub(1));
                    self.header(digits)?;
                    return self
                        .out
                        .write_str(s.get(i.saturating_add(1)..).unwrap_or_default());
                }
                Step::Mismatch => {
                    self.give_up()?;
                    // Every byte before `i` matched the ASCII pattern, so `i` is a char
                    // boundary.
                    return self.out.write_str(s.get(i..).unwrap_or_default());
                }
            }
        }
        Ok(())
    }
}
