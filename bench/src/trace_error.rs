//! Errors of the trace readers: every malformed row is named by file, line and column.

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TraceError {
    #[error("{file}: {source}")]
    Open { file: PathBuf, source: std::io::Error },
    #[error("{file}, line {line}, column {column}: {message}")]
    Row { file: PathBuf, line: u64, column: String, message: String },
    #[error("{file}: {message}")]
    File { file: PathBuf, message: String },
}

/// A csv error as a row error, with the column named from the header.
pub fn row_error(file: &Path, headers: &csv::StringRecord, err: &csv::Error) -> TraceError {
    let line = err.position().map_or(0, |p| p.line());
    let (column, message) = match err.kind() {
        csv::ErrorKind::Deserialize { err: de, .. } => {
            let column = de.field().and_then(|f| headers.get(f as usize)).unwrap_or("?").to_string();
            (column, de.kind().to_string())
        }
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            ("-".to_string(), format!("row has {len} fields, the header has {expected_len}"))
        }
        _ => ("-".to_string(), err.to_string()),
    };
    TraceError::Row { file: file.to_path_buf(), line, column, message }
}

/// A row whose fields parse but make no sense.
pub fn invalid(file: &Path, line: u64, column: &str, message: impl Into<String>) -> TraceError {
    TraceError::Row { file: file.to_path_buf(), line, column: column.to_string(), message: message.into() }
}
