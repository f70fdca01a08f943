//! The runtime's side: one connection per call.

use std::path::PathBuf;

use prost::Message;
use tokio::net::UnixStream;

use crate::{CallError, Code, Method, PROTOCOL_VERSION, v1, wire};

/// A client for one shim's socket. Cheap to clone; every call opens its own connection, so
/// calls never wait for each other and a long Wait or Attach holds only its own.
#[derive(Debug, Clone)]
pub struct ShimClient {
    path: PathBuf,
}

impl ShimClient {
    /// A client for `address` (`unix:///path`, or a path). Nothing is connected yet.
    pub fn new(address: &str) -> ShimClient {
        ShimClient {
            path: PathBuf::from(address.strip_prefix("unix://").unwrap_or(address)),
        }
    }

    /// A client for `address` whose shim accepts connections: an absent or dead shim fails
    /// here with [`Code::Unavailable`].
    pub async fn connect(address: &str) -> Result<ShimClient, CallError> {
        let c = ShimClient::new(address);
        c.open().await?;
        Ok(c)
    }

    async fn open(&self) -> Result<UnixStream, CallError> {
        UnixStream::connect(&self.path).await.map_err(|e| {
            CallError::unavailable(
                &format!("connect to the shim at {}", self.path.display()),
                e,
            )
        })
    }

    /// Opens a connection and sends the request.
    async fn send<Req: Message>(&self, method: Method, req: &Req) -> Result<UnixStream, CallError> {
        let mut conn = self.open().await?;
        wire::write_message(&mut conn, &[PROTOCOL_VERSION, method as u8], req)
            .await
            .map_err(|e| CallError::unavailable("send to the shim", e))?;
        Ok(conn)
    }

    async fn unary<Req: Message, Resp: Message + Default>(
        &self,
        method: Method,
        req: &Req,
    ) -> Result<Resp, CallError> {
        let mut conn = self.send(method, req).await?;
        match reply(&mut conn).await? {
            (wire::MESSAGE, body) => decode(&body),
            (tag, _) => Err(unexpected(tag)),
        }
    }

    /// The live output of the main process (empty `exec_id`) or an exec. When this returns,
    /// the shim has subscribed: output written from then on is in the stream.
    pub async fn attach(&self, req: v1::AttachRequest) -> Result<AttachStream, CallError> {
        let mut conn = self.send(Method::Attach, &req).await?;
        match reply(&mut conn).await? {
            (wire::OPEN, _) => Ok(AttachStream { conn: Some(conn) }),
            (tag, _) => Err(unexpected(tag)),
        }
    }
}

macro_rules! unary_calls {
    ($($(#[$doc:meta])* $name:ident: $method:ident($req:ident) -> $resp:ident;)*) => {
        impl ShimClient {
            $(
                $(#[$doc])*
                pub async fn $name(&self, req: v1::$req) -> Result<v1::$resp, CallError> {
                    self.unary(Method::$method, &req).await
                }
            )*
        }
    };
}

unary_calls! {
    /// The main process: pid, status and, once stopped, its exit.
    state: State(StateRequest) -> StateResponse;
    /// Releases a container created with `wait_for_start`.
    start: Start(StartRequest) -> StartResponse;
    kill: Kill(KillRequest) -> KillResponse;
    /// Returns when the main process has exited; dropping the future cancels the call.
    wait: Wait(WaitRequest) -> ExitStatus;
    write: Write(WriteRequest) -> WriteResponse;
    close_stdin: CloseStdin(CloseStdinRequest) -> CloseStdinResponse;
    resize: Resize(ResizeRequest) -> ResizeResponse;
    exec: Exec(ExecRequest) -> ExecResponse;
    exec_start: ExecStart(ExecStartRequest) -> ExecStartResponse;
    exec_state: ExecState(ExecStateRequest) -> ExecStateResponse;
    exec_wait: ExecWait(ExecWaitRequest) -> ExitStatus;
    delete: Delete(DeleteRequest) -> DeleteResponse;
    shutdown: Shutdown(ShutdownRequest) -> ShutdownResponse;
}

/// The chunks of an Attach, until every output stream of the process is closed.
#[derive(Debug)]
pub struct AttachStream {
    conn: Option<UnixStream>,
}

impl AttachStream {
    /// The next chunk; `None` once the process's output is complete.
    pub async fn message(&mut self) -> Result<Option<v1::AttachChunk>, CallError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        match reply(conn).await? {
            (wire::MESSAGE, body) => decode(&body).map(Some),
            (wire::END, _) => {
                self.conn = None;
                Ok(None)
            }
            (tag, _) => Err(unexpected(tag)),
        }
    }
}

/// The next reply frame; an ERROR frame is the call's error.
async fn reply(conn: &mut UnixStream) -> Result<(u8, Vec<u8>), CallError> {
    let ([tag], body) = wire::read_frame::<1, _>(conn)
        .await
        .map_err(|e| CallError::unavailable("the shim's reply", e))?;
    match tag {
        wire::ERROR => Err(wire::decode_error(&body)),
        _ => Ok((tag, body)),
    }
}

fn decode<M: Message + Default>(body: &[u8]) -> Result<M, CallError> {
    M::decode(body).map_err(|e| CallError::new(Code::Internal, format!("the shim's reply: {e}")))
}

fn unexpected(tag: u8) -> CallError {
    CallError::new(
        Code::Internal,
        format!("the shim's reply: unexpected frame {tag}"),
    )
}
