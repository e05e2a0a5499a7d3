//! Progress of `mirror`, `export` and `import` on stderr: two bars (bytes, objects) on a
//! terminal, one plain line per object otherwise (logs, CI), nothing with `--quiet`.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use signet_registry::RegistryError;
use signet_registry::mirror::{Kind, Object, Outcome, Progress, Summary};

/// How progress is shown.
pub enum Reporter {
    /// Bars on a terminal.
    Bars(Bars),
    /// A line per object.
    Lines,
    /// Nothing but errors.
    Quiet,
}

/// The two bars.
pub struct Bars {
    multi: MultiProgress,
    bytes: ProgressBar,
    objects: ProgressBar,
}

impl Reporter {
    /// Bars when stderr is a terminal, lines otherwise, nothing when `quiet`.
    pub fn new(quiet: bool) -> Reporter {
        if quiet {
            return Reporter::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Reporter::Lines;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let bytes = multi.add(ProgressBar::new(0));
        bytes.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bytes.set_prefix("bytes");
        let objects = multi.add(ProgressBar::new(0));
        objects.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        objects.set_prefix("objects");
        objects.set_message("reading the source");
        objects.enable_steady_tick(Duration::from_millis(200));
        Reporter::Bars(Bars {
            multi,
            bytes,
            objects,
        })
    }

    /// A line for the user above the bars (or on its own), unless quiet.
    pub fn say(&self, message: &str) {
        match self {
            Reporter::Bars(b) => {
                let _ = b.multi.println(message);
            }
            Reporter::Lines => eprintln!("{message}"),
            Reporter::Quiet => {}
        }
    }

    /// Clears the bars and prints the summary, unless quiet.
    pub fn finish(&self, summary: &Summary) {
        match self {
            Reporter::Bars(b) => {
                b.bytes.finish_and_clear();
                b.objects.finish_and_clear();
                // With no bar left, the multi-bar would not end the line: print it plainly.
                let _ = b.multi.clear();
                eprintln!("{summary}");
            }
            _ => self.say(&summary.to_string()),
        }
    }

    /// Clears the bars after a failure (the error is printed by `main`).
    pub fn abandon(&self) {
        if let Reporter::Bars(b) = self {
            b.bytes.abandon();
            b.objects.abandon();
        }
    }
}

impl Progress for Reporter {
    fn planned(&self, objects: u64, bytes: u64) {
        if let Reporter::Bars(b) = self {
            // Several images can go through one reporter (export, import): totals add up.
            b.objects.inc_length(objects);
            b.bytes.inc_length(bytes);
        }
    }

    fn transferred(&self, bytes: u64) {
        if let Reporter::Bars(b) = self {
            b.bytes.inc(bytes);
        }
    }

    fn retrying(&self, object: &Object, undo: u64, error: &RegistryError) {
        if let Reporter::Bars(b) = self {
            b.bytes
                .set_position(b.bytes.position().saturating_sub(undo));
        }
        self.say(&format!("retrying {object}: {error}"));
    }

    fn finished(&self, object: &Object, outcome: Outcome) {
        match self {
            Reporter::Bars(b) => {
                b.objects.inc(1);
                b.objects.set_message(format!("{outcome} {object}"));
                // Bytes not transferred leave the total rather than fill the bar.
                if object.kind == Kind::Blob && outcome != Outcome::Copied {
                    let length = b.bytes.length().unwrap_or(0);
                    b.bytes.set_length(length.saturating_sub(object.size));
                }
            }
            Reporter::Lines => eprintln!("{outcome} {object}"),
            Reporter::Quiet => {}
        }
    }

    fn warning(&self, message: &str) {
        // Warnings are shown even when quiet: they say something was not copied.
        match self {
            Reporter::Quiet => eprintln!("warning: {message}"),
            _ => self.say(&format!("warning: {message}")),
        }
    }
}
