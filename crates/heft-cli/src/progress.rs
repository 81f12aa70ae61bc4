//! A progress bar on stderr for long reads, only when stderr is a terminal.
//!
//! The library reports `(done, total)` from its reading threads; the bar appears once a read has
//! lasted half a second, so short reads (and scripts, whose stderr is not a terminal) never see
//! it. `indicatif` draws it: it throttles redraws from many threads, estimates the rate and
//! clears its line when done.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A read's progress bar: hidden until the read has taken [`SHOW_AFTER`].
pub struct Bar {
    bar: ProgressBar,
}

const SHOW_AFTER: Duration = Duration::from_millis(500);

impl Bar {
    /// A bar and the callback that moves it (`None` when stderr is not a terminal).
    pub fn new() -> (Bar, Option<heft::stream::Progress>) {
        let bar = ProgressBar::hidden();
        if !std::io::stderr().is_terminal() {
            return (Bar { bar }, None);
        }
        let start = Instant::now();
        let shown = AtomicBool::new(false);
        let handle = bar.clone();
        let progress = heft::stream::Progress::new(move |done, total| {
            if !shown.load(Ordering::Relaxed) {
                if start.elapsed() < SHOW_AFTER {
                    return;
                }
                if shown.swap(true, Ordering::Relaxed) {
                    return;
                }
                let style = match total {
                    Some(total) => {
                        handle.set_length(total);
                        "reading {bar:30} {decimal_bytes}/{decimal_total_bytes} \
                         {decimal_bytes_per_sec} {eta}"
                    }
                    None => "reading {spinner} {decimal_bytes} {decimal_bytes_per_sec}",
                };
                if let Ok(style) = ProgressStyle::with_template(style) {
                    handle.set_style(style);
                }
                handle.set_draw_target(ProgressDrawTarget::stderr());
            }
            handle.set_position(done);
        });
        (Bar { bar }, Some(progress))
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
