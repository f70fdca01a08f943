//! The shim's side: read the one request of a connection, answer it.

use prost::Message;
use tokio::{
    io::AsyncReadExt,
    net::{
        UnixStream,
        unix::{OwnedReadHalf, OwnedWriteHalf},
    },
};

use crate::{CallError, Code, Method, PROTOCOL_VERSION, wire};

/// A received call: its method and request, and the half of the connection to answer on.
#[derive(Debug)]
pub struct Call {
    method: Method,
    body: Vec<u8>,
    out: OwnedWriteHalf,
}

/// Resolves when the client closes its connection: the call is cancelled.
#[derive(Debug)]
pub struct Hangup {
    input: OwnedReadHalf,
}

impl Hangup {
    pub async fn wait(mut self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = self.input.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    }
}

impl Call {
    /// Reads the request of a new connection. Its head (version, method, length) is judged
    /// before any of its body is read: a request this side cannot take (another protocol
    /// version, an unknown method, longer than the method's requests can be) is answered with
    /// an error here, and gives `None`, as does a connection closed before a whole request.
    pub async fn accept(conn: UnixStream) -> Option<(Call, Hangup)> {
        let (mut input, mut out) = conn.into_split();
        let ([version, method], len) = wire::read_head::<2, _>(&mut input).await.ok()?;
        let method = match Method::from_u8(method) {
            Some(_) if version != PROTOCOL_VERSION => Err(format!(
                "unsupported shim protocol version {version} (this shim speaks {PROTOCOL_VERSION})"
            )),
            Some(m) if len > m.max_request() => Err(format!(
                "{m:?} request of {len} bytes is larger than {}",
                m.max_request()
            )),
            Some(m) => Ok(m),
            None => Err(format!("unknown method {method}")),
        };
        match method {
            Ok(method) => {
                let body = wire::read_payload(&mut input, len).await.ok()?;
                Some((Call { method, body, out }, Hangup { input }))
            }
            Err(msg) => {
                let e = CallError::new(Code::InvalidArgument, msg);
                let _ = wire::write_error(&mut out, &e).await;
                None
            }
        }
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// The request message.
    pub fn request<M: Message + Default>(&self) -> Result<M, CallError> {
        M::decode(self.body.as_slice()).map_err(|e| {
            CallError::new(
                Code::InvalidArgument,
                format!("{:?} request: {e}", self.method),
            )
        })
    }

    /// Answers a unary call. A client that has gone away is not an error here.
    pub async fn reply<M: Message>(mut self, r: Result<M, CallError>) {
        let _ = match r {
            Ok(m) => wire::write_message(&mut self.out, &[wire::MESSAGE], &m).await,
            Err(e) => wire::write_error(&mut self.out, &e).await,
        };
    }

    /// Answers a streaming call: with the error, or with OPEN, giving back `r`'s value and a
    /// sender for the messages. `None` after an error, or when the client has gone away.
    pub async fn open<T>(mut self, r: Result<T, CallError>) -> Option<(T, StreamSender)> {
        match r {
            Ok(v) => {
                wire::write_frame(&mut self.out, &[wire::OPEN], &[])
                    .await
                    .ok()?;
                Some((v, StreamSender { out: self.out }))
            }
            Err(e) => {
                self.reply::<()>(Err(e)).await;
                None
            }
        }
    }
}

/// The messages of an open stream.
#[derive(Debug)]
pub struct StreamSender {
    out: OwnedWriteHalf,
}

impl StreamSender {
    /// Sends one message; an error means the client has gone away.
    pub async fn send<M: Message>(&mut self, m: &M) -> std::io::Result<()> {
        wire::write_message(&mut self.out, &[wire::MESSAGE], m).await
    }

    /// Ends the stream.
    pub async fn end(mut self) {
        let _ = wire::write_frame(&mut self.out, &[wire::END], &[]).await;
    }
}
