//! Guest console plumbing shared by the emulated UARTs and the root task.
//!
//! * [`ConsoleSink`]: where console output goes. On seL4 the root task implements it with the
//!   kernel's debug output (`seL4_DebugPutChar`); host tests record into a `Vec<u8>`.
//! * [`LineWriter`]: a sink that buffers a guest's output and emits it one line at a time
//!   (on `'\n'`, when [`LINE_MAX`] bytes are buffered, or on an explicit flush), each line
//!   prefixed with the console's name (`[guest ttyAMA0] `), so guest and VMM output sharing
//!   one debug console can be told apart and never interleave inside a line.
//! * [`EscapeFilter`]: the host-to-guest input path. `Ctrl-A s` asks for exit statistics,
//!   `Ctrl-A x` stops the VM, `Ctrl-A b` sends a break, `Ctrl-A h` prints [`HELP`],
//!   `Ctrl-A Ctrl-A` sends one `Ctrl-A` to the guest. The guest never sees an escape it
//!   consumed.
//! * [`format_record`]: the VMM's log-line format, `[vmm WARN vcpu1] message`, shared by the
//!   root task's logger and the host tests so both print the same thing.
#![no_std]
#![forbid(unsafe_code)]
// Guest values never overflow silently: checked, wrapping or saturating arithmetic only.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

extern crate alloc;

mod escape;
mod line;
mod record;

pub use escape::{ConsoleEvent, ESCAPE, EscapeFilter, Feed, HELP, Input};
pub use line::{LINE_MAX, LineWriter, PREFIX_MAX};
pub use record::{LogLine, format_message, format_record};

use alloc::boxed::Box;
use alloc::vec::Vec;

/// Where console output goes.
///
/// Implementations must not fail: a console that cannot keep up drops bytes rather than
/// stall the VMM.
pub trait ConsoleSink {
    /// Writes `bytes` (raw: not necessarily UTF-8, not necessarily a whole line).
    fn write_bytes(&mut self, bytes: &[u8]);

    /// Pushes out anything buffered (a partial line). The default does nothing.
    fn flush(&mut self) {}
}

impl<S: ConsoleSink + ?Sized> ConsoleSink for &mut S {
    fn write_bytes(&mut self, bytes: &[u8]) {
        (**self).write_bytes(bytes);
    }

    fn flush(&mut self) {
        (**self).flush();
    }
}

impl<S: ConsoleSink + ?Sized> ConsoleSink for Box<S> {
    fn write_bytes(&mut self, bytes: &[u8]) {
        (**self).write_bytes(bytes);
    }

    fn flush(&mut self) {
        (**self).flush();
    }
}

/// Records everything written (host tests, or collecting output to print later).
impl ConsoleSink for Vec<u8> {
    fn write_bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Discards everything (a guest console nobody listens to).
#[derive(Clone, Copy, Default, Debug)]
pub struct NullSink;

impl ConsoleSink for NullSink {
    fn write_bytes(&mut self, _: &[u8]) {}
}
