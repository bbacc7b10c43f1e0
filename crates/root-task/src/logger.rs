//! The VMM's log, on the board's UART (`uart.rs`).

use log::{LevelFilter, Log, Metadata, Record};

struct DebugConsole;

static LOGGER: DebugConsole = DebugConsole;

/// The most verbose level compiled in, chosen at build time with `VMM_LOG=trace|debug|info|warn|error`.
// A constant: the indexing is evaluated (and checked) at compile time.
#[allow(clippy::indexing_slicing)]
const LEVEL: LevelFilter = match option_env!("VMM_LOG") {
    Some(s) if s.len() == 5 && s.as_bytes()[0] == b't' => LevelFilter::Trace,
    Some(s) if s.len() == 5 && s.as_bytes()[0] == b'd' => LevelFilter::Debug,
    Some(s) if s.len() == 4 && s.as_bytes()[0] == b'w' => LevelFilter::Warn,
    Some(s) if s.len() == 5 && s.as_bytes()[0] == b'e' => LevelFilter::Error,
    _ => LevelFilter::Info,
};

impl Log for DebugConsole {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= LEVEL
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            crate::out!("[vmm {:<5}] {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger.
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LEVEL);
    }
}
