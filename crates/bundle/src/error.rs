use std::path::PathBuf;

/// Reading a bundle file failed.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The file could not be read (for `exit.json` and `start-error.json`, a missing file is
    /// not an error but `Ok(None)`).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON for its type, or (config.json) fails [`crate::Config::validate`].
    #[error("invalid {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}
