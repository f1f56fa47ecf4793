//! What the integration tests share.

use std::path::PathBuf;

/// `../shared/traces/<relative>` (a file or a folder), which lives beside the repository, not in it. CI
/// always has it, so there a missing one fails; a clone without the shared traces skips the test, loudly.
pub fn shared_trace(relative: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces").join(relative);
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{} is missing, and CI must have the shared traces", path.display());
    }
    eprintln!("SKIPPED: {} not found (the shared traces are not checked out beside the repo)", path.display());
    None
}
