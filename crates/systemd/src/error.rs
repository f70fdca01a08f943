//! The driver's errors.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A slice name systemd or dockerd would refuse (the message is the user's to read).
    #[error("{0}")]
    InvalidSlice(String),
    /// What the systemd driver cannot do (the message names it).
    #[error("{0}")]
    Unsupported(String),
    /// The D-Bus connection or a call failed.
    #[error("systemd D-Bus {what}: {source}")]
    Dbus {
        what: String,
        #[source]
        source: Box<zbus::Error>,
    },
    /// The unit's job finished with another result than `done`.
    #[error("systemd job for {unit} finished with result {result:?}")]
    Job { unit: String, result: String },
    /// No answer for the unit's job in time.
    #[error("timed out waiting for systemd to {what} {unit}")]
    Timeout { what: &'static str, unit: String },
}

impl Error {
    pub(crate) fn dbus(what: impl Into<String>, source: zbus::Error) -> Error {
        Error::Dbus {
            what: what.into(),
            source: Box::new(source),
        }
    }
}
