//! A progress bar that appears only on runs longer than a second, and never when stderr is not a terminal
//! (indicatif hides itself then), so logs and CI output stay clean.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct DelayedProgress {
    bar: ProgressBar,
    started: Instant,
    shown: bool,
}

impl DelayedProgress {
    pub fn new(total: u64, what: &str) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        DelayedProgress { bar, started: Instant::now(), shown: false }
    }

    pub fn set(&mut self, done: u64) {
        if !self.shown && self.started.elapsed() > Duration::from_secs(1) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        self.bar.set_position(done);
    }

    pub fn set_length(&mut self, total: u64) {
        self.bar.set_length(total);
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
