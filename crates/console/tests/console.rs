//! The line writer, the escape filter and the log-line format.

// Test code: clippy.toml allows these inside #[test] functions; the helpers need it spelled out.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use console::{
    ConsoleEvent, ConsoleSink, ESCAPE, EscapeFilter, Input, LINE_MAX, LineWriter, LogLine,
    NullSink, PREFIX_MAX, format_message, format_record,
};
use log::Level;

/// Records each `write_bytes` call separately, to check one call per line.
#[derive(Default)]
struct Calls(Vec<Vec<u8>>);

impl ConsoleSink for Calls {
    fn write_bytes(&mut self, bytes: &[u8]) {
        self.0.push(bytes.to_vec());
    }
}

impl Calls {
    fn lines(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|l| String::from_utf8(l.clone()).unwrap())
            .collect()
    }
}

#[test]
fn one_prefixed_line_per_newline_in_one_write() {
    let mut w = LineWriter::guest("ttyAMA0", Calls::default());
    w.write_bytes(b"[    0.000000] Booting Linux\r\n\r\nsecond");
    w.write_bytes(b" line\n");
    assert_eq!(
        w.sink().lines(),
        [
            "[guest ttyAMA0] [    0.000000] Booting Linux\n",
            "[guest ttyAMA0] \n",
            "[guest ttyAMA0] second line\n",
        ]
    );
    assert_eq!(w.lines(), 3);
    assert_eq!(w.pending(), 0);
}

#[test]
fn long_lines_are_cut_at_line_max() {
    let mut w = LineWriter::guest("hvc0", Calls::default());
    let long = vec![b'x'; LINE_MAX * 2 + 10];
    w.write_bytes(&long);
    assert_eq!(w.sink().0.len(), 2, "two full buffers emitted");
    assert_eq!(w.pending(), 10);
    w.write_bytes(b"\n");
    let lines = w.sink().lines();
    assert_eq!(lines.len(), 3);
    for l in &lines[..2] {
        assert_eq!(l.len(), "[guest hvc0] ".len() + LINE_MAX + 1);
        assert!(l.starts_with("[guest hvc0] xxx") && l.ends_with("x\n"));
    }
    assert_eq!(lines[2], format!("[guest hvc0] {}\n", "x".repeat(10)));
}

#[test]
fn a_cut_never_splits_a_utf8_sequence() {
    let mut w = LineWriter::new("> ", Calls::default());
    let mut text = "a".repeat(LINE_MAX - 1).into_bytes();
    text.extend_from_slice("é and more\n".as_bytes());
    w.write_bytes(&text);
    let lines = w.sink().lines(); // from_utf8 would fail on a split sequence
    assert_eq!(lines[0], format!("> {}\n", "a".repeat(LINE_MAX - 1)));
    assert_eq!(lines[1], "> é and more\n");
}

#[test]
fn flush_emits_a_prompt_and_the_next_newline_does_not_add_an_empty_line() {
    let mut w = LineWriter::guest("ttyAMA0", Calls::default());
    w.write_bytes(b"login: ");
    assert!(w.sink().0.is_empty());
    ConsoleSink::flush(&mut w);
    ConsoleSink::flush(&mut w); // nothing more
    assert_eq!(w.sink().lines(), ["[guest ttyAMA0] login: \n"]);
    // The user's name is echoed, then the guest ends the line.
    w.write_bytes(b"root\r\n");
    w.write_bytes(b"Password: ");
    w.flush();
    w.write_bytes(b"\r\n");
    w.write_bytes(b"Last login\r\n");
    assert_eq!(
        w.sink().lines(),
        [
            "[guest ttyAMA0] login: \n",
            "[guest ttyAMA0] root\n",
            "[guest ttyAMA0] Password: \n",
            "[guest ttyAMA0] Last login\n",
        ]
    );
}

#[test]
fn prefixes_are_bounded() {
    let w = LineWriter::new(&"p".repeat(100), NullSink);
    assert_eq!(w.prefix().len(), PREFIX_MAX);
    let w = LineWriter::guest(&"n".repeat(100), NullSink);
    assert_eq!(w.prefix().len(), PREFIX_MAX);
    assert!(w.prefix().ends_with(b"nnn] "));
    let w = LineWriter::new("ééééééééééééééééééééééééé", NullSink);
    assert!(std::str::from_utf8(w.prefix()).is_ok());
    let w = LineWriter::guest("ttyAMA0", NullSink);
    assert_eq!(w.prefix(), b"[guest ttyAMA0] ");
}

#[test]
fn control_bytes_and_escape_sequences_pass_through() {
    let mut w = LineWriter::new("", Vec::new());
    w.write_bytes(b"\x1b[1;32mOK\x1b[0m\tdone\x07\n");
    assert_eq!(w.into_inner(), b"\x1b[1;32mOK\x1b[0m\tdone\x07\n");
}

fn filter(f: &mut EscapeFilter, input: &[u8]) -> (Vec<u8>, Vec<ConsoleEvent>) {
    let (mut g, mut e) = (Vec::new(), Vec::new());
    f.filter(input, &mut g, &mut e);
    (g, e)
}

#[test]
fn escapes() {
    let mut f = EscapeFilter::new();
    assert_eq!(filter(&mut f, b"ls\r"), (b"ls\r".to_vec(), vec![]));
    // Ctrl-A s: statistics; the guest sees nothing of it.
    assert_eq!(
        filter(&mut f, b"a\x01sb"),
        (b"ab".to_vec(), vec![ConsoleEvent::Stats])
    );
    // Ctrl-A Ctrl-A: one literal Ctrl-A.
    assert_eq!(filter(&mut f, b"\x01\x01"), (vec![ESCAPE], vec![]));
    // Ctrl-A x: stop; Ctrl-A b: break; Ctrl-A h / ?: help.
    assert_eq!(
        filter(&mut f, b"\x01x\x01b\x01h\x01?\x01S\x01X"),
        (
            vec![],
            vec![
                ConsoleEvent::Stop,
                ConsoleEvent::Break,
                ConsoleEvent::Help,
                ConsoleEvent::Help,
                ConsoleEvent::Stats,
                ConsoleEvent::Stop,
            ]
        )
    );
    // Unknown command: both bytes go to the guest (emacs' Ctrl-A e ... keeps working).
    assert_eq!(filter(&mut f, b"\x01e"), (vec![ESCAPE, b'e'], vec![]));
    // Split across reads.
    assert_eq!(filter(&mut f, b"q\x01"), (b"q".to_vec(), vec![]));
    assert!(f.is_armed());
    assert_eq!(filter(&mut f, b"s"), (vec![], vec![ConsoleEvent::Stats]));
    assert!(!f.is_armed());
}

#[test]
fn feed_yields_at_most_two_items() {
    let mut f = EscapeFilter::new();
    assert_eq!(f.feed(b'a').collect::<Vec<_>>(), [Input::Byte(b'a')]);
    assert_eq!(f.feed(ESCAPE).count(), 0);
    assert_eq!(
        f.feed(b'z').collect::<Vec<_>>(),
        [Input::Byte(ESCAPE), Input::Byte(b'z')]
    );
    // Every byte after an escape gives 1 or 2 items, never panics.
    for b in 0..=255u8 {
        let mut f = EscapeFilter::new();
        assert_eq!(f.feed(ESCAPE).count(), 0);
        let n = f.feed(b).count();
        assert!(n == 1 || n == 2, "{b:#x}");
    }
}

fn fmt(level: Level, args: std::fmt::Arguments<'_>) -> String {
    let mut s = String::new();
    format_message(&mut s, level, args).unwrap();
    s
}

#[test]
fn log_lines_move_the_vcpu_into_the_header() {
    let vcpu = 3;
    assert_eq!(
        fmt(
            Level::Warn,
            format_args!("[vcpu{vcpu}] unhandled system register")
        ),
        "[vmm WARN vcpu3] unhandled system register"
    );
    assert_eq!(
        fmt(Level::Info, format_args!("stage-2 mapped {} pages", 12)),
        "[vmm INFO] stage-2 mapped 12 pages"
    );
    // The tag split across format pieces ("[" literal, then the vCPU's Display).
    struct V(u8);
    impl std::fmt::Display for V {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "vcpu{}", self.0)
        }
    }
    assert_eq!(
        fmt(
            Level::Error,
            format_args!("[{}] PSCI CPU_ON: {}", V(12), "denied")
        ),
        "[vmm ERROR vcpu12] PSCI CPU_ON: denied"
    );
    // Near misses stay in the message.
    for (msg, want) in [
        ("[vcpu] x", "[vmm DEBUG] [vcpu] x"),
        ("[vcpu1234] x", "[vmm DEBUG] [vcpu1234] x"),
        ("[vcpu1]x", "[vmm DEBUG] [vcpu1]x"),
        ("[vcpu1", "[vmm DEBUG] [vcpu1"),
        ("[vcpé] x", "[vmm DEBUG] [vcpé] x"),
        ("", "[vmm DEBUG] "),
        ("vcpu1 x", "[vmm DEBUG] vcpu1 x"),
    ] {
        assert_eq!(fmt(Level::Debug, format_args!("{msg}")), want, "{msg:?}");
    }
    assert_eq!(
        format!(
            "{}",
            LogLine::new(Level::Trace, format_args!("[vcpu0] wfi"))
        ),
        "[vmm TRACE vcpu0] wfi"
    );
}

#[test]
fn format_record_uses_level_and_args() {
    let args = format_args!("[vcpu1] unhandled 4-byte read at 0x9001000 (pl011): reads as zero");
    let record = log::Record::builder()
        .level(Level::Warn)
        .target("mmio_bus")
        .args(args)
        .build();
    let mut s = String::new();
    format_record(&mut s, &record).unwrap();
    assert_eq!(
        s,
        "[vmm WARN vcpu1] unhandled 4-byte read at 0x9001000 (pl011): reads as zero"
    );
    assert_eq!(
        LogLine::from_record(&record).to_string(),
        s,
        "Display gives the same line"
    );
}
