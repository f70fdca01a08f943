use std::fmt;

/// The class of an error, modelled on moby's errdefs. It travels unchanged from a service's
/// domain code through gRPC to the Docker API's HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    Conflict,
    AlreadyExists,
    NotModified,
    Unauthorized,
    Forbidden,
    Unavailable,
    NotImplemented,
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::NotFound,
        ErrorKind::InvalidArgument,
        ErrorKind::Conflict,
        ErrorKind::AlreadyExists,
        ErrorKind::NotModified,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::Unavailable,
        ErrorKind::NotImplemented,
        ErrorKind::Internal,
    ];

    /// A stable name, used on the wire (gRPC metadata `x-error-kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::InvalidArgument => "invalid-argument",
            ErrorKind::Conflict => "conflict",
            ErrorKind::AlreadyExists => "already-exists",
            ErrorKind::NotModified => "not-modified",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotImplemented => "not-implemented",
            ErrorKind::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ErrorKind::parse("nope"), None);
    }
}
