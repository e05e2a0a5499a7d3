//! Printing to stdout without panicking when the reader has gone (`signet … | head`).

use std::io::Write as _;

/// Writes `text` to stdout; a closed pipe is not an error worth a panic.
pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes `text` and a newline to stdout.
pub fn line(text: &str) {
    stdout(&format!("{text}\n"));
}
