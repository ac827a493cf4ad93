//! Progress bars on stderr for the commands that can run long (export,
//! backup, migrate-data): drawn only when a person is watching, i.e. stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Export and migrate-data: votes written of the votes to write, the rate and the time left.
pub const VOTES: &str =
    "{prefix} [{bar:30}] {human_pos}/{human_len} votes, {per_sec:0}, {eta} left";
/// Backup: bytes of the copy on disk, of about the source's data.
pub const BYTES: &str = "{prefix} [{bar:30}] {binary_bytes} of about {binary_total_bytes}, {binary_bytes_per_sec}, {eta} left";

/// A bar of `len` units in `template`, labelled `prefix`; hidden (it draws
/// nothing, costs next to nothing) unless stderr is a terminal and `visible`.
pub fn bar(len: u64, template: &'static str, prefix: &'static str, visible: bool) -> ProgressBar {
    if !visible || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(4));
    // The templates are constants: a mistake in one shows as the default style.
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(prefix);
    bar
}
