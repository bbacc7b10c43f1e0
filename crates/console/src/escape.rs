//! The console input escape: `Ctrl-A` followed by a command letter.

use alloc::vec::Vec;

/// The escape byte: `Ctrl-A`.
pub const ESCAPE: u8 = 0x01;

/// What the escapes do, for the VMM to print on `Ctrl-A h`.
pub const HELP: &str = "console escapes: Ctrl-A s  exit statistics | Ctrl-A x  stop the VM | \
Ctrl-A b  send a break | Ctrl-A h  this help | Ctrl-A Ctrl-A  a literal Ctrl-A";

/// A request the user made with an escape sequence.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ConsoleEvent {
    /// `Ctrl-A s`: print the exit statistics.
    Stats,
    /// `Ctrl-A x`: stop the VM.
    Stop,
    /// `Ctrl-A b`: send a break to the guest's UART (Linux: the magic SysRq prefix).
    Break,
    /// `Ctrl-A h` (or `?`): print [`HELP`].
    Help,
}

/// One item of filtered input.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Input {
    /// A byte for the guest.
    Byte(u8),
    /// A request for the VMM.
    Event(ConsoleEvent),
}

/// Separates escape sequences from the bytes meant for the guest.
///
/// After `Ctrl-A`:
///
/// | next byte       | result                                   |
/// |-----------------|------------------------------------------|
/// | `s` / `S`       | [`ConsoleEvent::Stats`]                  |
/// | `x` / `X`       | [`ConsoleEvent::Stop`]                   |
/// | `b` / `B`       | [`ConsoleEvent::Break`]                  |
/// | `h` / `H` / `?` | [`ConsoleEvent::Help`]                   |
/// | `Ctrl-A`        | one `Ctrl-A` byte for the guest          |
/// | anything else   | `Ctrl-A` and that byte, both to the guest |
///
/// An escape split across two reads works: the filter remembers a trailing `Ctrl-A`.
#[derive(Clone, Copy, Default, Debug)]
pub struct EscapeFilter {
    armed: bool,
}

impl EscapeFilter {
    /// A filter with no escape pending.
    pub const fn new() -> Self {
        EscapeFilter { armed: false }
    }

    /// True after a `Ctrl-A` whose command byte has not arrived yet.
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// Filters one input byte: zero, one or two items.
    pub fn feed(&mut self, byte: u8) -> Feed {
        if !self.armed {
            if byte == ESCAPE {
                self.armed = true;
                return Feed::none();
            }
            return Feed::one(Input::Byte(byte));
        }
        self.armed = false;
        match byte {
            ESCAPE => Feed::one(Input::Byte(ESCAPE)),
            b's' | b'S' => Feed::one(Input::Event(ConsoleEvent::Stats)),
            b'x' | b'X' => Feed::one(Input::Event(ConsoleEvent::Stop)),
            b'b' | b'B' => Feed::one(Input::Event(ConsoleEvent::Break)),
            b'h' | b'H' | b'?' => Feed::one(Input::Event(ConsoleEvent::Help)),
            other => Feed {
                items: [Some(Input::Byte(ESCAPE)), Some(Input::Byte(other))],
                next: 0,
            },
        }
    }

    /// Filters `input`: bytes for the guest are appended to `guest`, requests to `events`,
    /// each in input order.
    pub fn filter(&mut self, input: &[u8], guest: &mut Vec<u8>, events: &mut Vec<ConsoleEvent>) {
        for &b in input {
            for item in self.feed(b) {
                match item {
                    Input::Byte(b) => guest.push(b),
                    Input::Event(e) => events.push(e),
                }
            }
        }
    }
}

/// What one input byte turned into (an iterator of at most two items).
#[derive(Clone, Copy, Debug)]
pub struct Feed {
    items: [Option<Input>; 2],
    next: usize,
}

impl Feed {
    const fn none() -> Self {
        Feed {
            items: [None, None],
            next: 0,
        }
    }

    const fn one(i: Input) -> Self {
        Feed {
            items: [Some(i), None],
            next: 0,
        }
    }
}

impl Iterator for Feed {
    type Item = Input;

    fn next(&mut self) -> Option<Input> {
        let item = self.items.get_mut(self.next)?.take();
        self.next = self.next.saturating_add(1);
        item
    }
}
