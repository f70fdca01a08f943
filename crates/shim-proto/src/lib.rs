//! `berth.shim.v1` on a shim's unix socket. The messages are the prost types generated from
//! `proto/berth/shim/v1/shim.proto`; the calls travel over a small framing of our own instead
//! of gRPC, as containerd's shims use ttrpc: HTTP/2 (h2, hyper, tonic) is most of the code a
//! shim would otherwise map, and every container has a shim.
//!
//! One call per connection. The client connects and writes one request frame; the shim answers
//! with one reply frame (unary calls) or with `OPEN`, message frames and `END` (Attach). A
//! client that closes its connection cancels the call. The frames:
//!
//! ```text
//! request: version (u8, 1) | method (u8) | length (u32, big-endian) | message
//! reply:   kind (u8)                     | length (u32, big-endian) | payload
//!          kind 0 MESSAGE: a message; 1 ERROR: code (u8) then a UTF-8 message;
//!          2 END: the stream is complete; 3 OPEN: the stream is set up (empty payload)
//! ```

mod client;
#[cfg(test)]
mod proptests;
mod server;
mod wire;

pub use client::{AttachStream, ShimClient};
pub use server::{Call, Hangup, StreamSender};

/// The generated messages of `berth.shim.v1`.
#[allow(unreachable_pub, clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/berth.shim.v1.rs"));
}

/// The version byte every request starts with.
pub const PROTOCOL_VERSION: u8 = 1;

/// The largest frame either side accepts.
pub const MAX_FRAME: usize = 16 << 20;

macro_rules! methods {
    ($($name:ident = $n:literal,)*) => {
        /// The calls of the `Shim` service, in the order of `shim.proto`; the number is the
        /// method byte of a request.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Method {
            $($name = $n,)*
        }

        impl Method {
            pub fn from_u8(b: u8) -> Option<Method> {
                match b {
                    $($n => Some(Method::$name),)*
                    _ => None,
                }
            }
        }
    };
}

impl Method {
    /// The largest request of this method a shim reads: stdin data (Write) and a process to
    /// exec (Exec) come from gRPC messages of up to 4 MiB; every other request is a few
    /// short fields. A longer claimed length is refused before its payload is read.
    pub fn max_request(self) -> usize {
        match self {
            Method::Write | Method::Exec => MAX_FRAME,
            _ => MAX_SMALL_REQUEST,
        }
    }
}

/// The largest request of the methods with only short fields.
pub const MAX_SMALL_REQUEST: usize = 64 << 10;

methods! {
    State = 1,
    Start = 2,
    Kill = 3,
    Wait = 4,
    Attach = 5,
    Write = 6,
    CloseStdin = 7,
    Resize = 8,
    Exec = 9,
    ExecStart = 10,
    ExecState = 11,
    ExecWait = 12,
    Delete = 13,
    Shutdown = 14,
}

/// The class of a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// No such process or exec.
    NotFound = 1,
    /// The call does not fit the process's state (e.g. Delete while running).
    FailedPrecondition = 2,
    InvalidArgument = 3,
    Internal = 4,
    /// The shim could not be reached, or the connection broke.
    Unavailable = 5,
}

impl Code {
    fn from_u8(b: u8) -> Code {
        match b {
            1 => Code::NotFound,
            2 => Code::FailedPrecondition,
            3 => Code::InvalidArgument,
            5 => Code::Unavailable,
            _ => Code::Internal,
        }
    }
}

/// A failed call: its class and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub code: Code,
    pub message: String,
}

impl CallError {
    pub fn new(code: Code, message: impl Into<String>) -> CallError {
        CallError {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    fn unavailable(what: &str, e: std::io::Error) -> CallError {
        CallError::new(Code::Unavailable, format!("{what}: {e}"))
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for CallError {}
