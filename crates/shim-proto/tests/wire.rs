//! The protocol over a real unix socket: a small server answers as the shim would.

use std::time::Duration;

use berth_shim_proto::{Call, CallError, Code, Method, ShimClient, v1 as pb};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{UnixListener, UnixStream},
    sync::mpsc,
};

const PATIENCE: Duration = Duration::from_secs(20);

/// A server that answers as a shim would: Kill answers; Attach opens, sends three chunks and
/// ends; Wait reports "waiting" and never answers; Write and Exec fail. A call cancelled by
/// its client reports "hangup".
fn serve(dir: &tempfile::TempDir) -> (String, mpsc::UnboundedReceiver<&'static str>) {
    let path = dir.path().join("shim.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (conn, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let Some((call, hangup)) = Call::accept(conn).await else {
                    return;
                };
                tokio::select! {
                    () = answer(call, &tx) => {}
                    () = hangup.wait() => { let _ = tx.send("hangup"); }
                }
            });
        }
    });
    (format!("unix://{}", path.display()), rx)
}

async fn answer(call: Call, events: &mpsc::UnboundedSender<&'static str>) {
    match call.method() {
        Method::Kill => {
            let r = call.request::<pb::KillRequest>().map(|r| {
                assert_eq!((r.exec_id.as_str(), r.signal, r.all), ("e1", 15, true));
                pb::KillResponse {}
            });
            call.reply(r).await
        }
        Method::Attach => {
            let Some(((), mut out)) = call.open(Ok(())).await else {
                return;
            };
            for i in 0..3u8 {
                let chunk = pb::AttachChunk {
                    stream: pb::Stream::Stdout as i32,
                    data: vec![b'a' + i; 100_000],
                };
                out.send(&chunk).await.unwrap();
            }
            out.end().await
        }
        Method::Wait => {
            let _ = events.send("waiting");
            std::future::pending().await
        }
        Method::Write => {
            let e = CallError::new(Code::FailedPrecondition, "stdin is closed");
            call.reply::<pb::WriteResponse>(Err(e)).await
        }
        Method::Exec => {
            let e = CallError::new(Code::NotFound, "no such process");
            let r = call.open::<()>(Err(e)).await;
            assert!(r.is_none());
        }
        m => panic!("unexpected {m:?}"),
    }
}

#[tokio::test]
async fn unary_calls_streams_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (address, _events) = serve(&dir);
    let c = ShimClient::connect(&address).await.unwrap();

    let kill = pb::KillRequest {
        exec_id: "e1".into(),
        signal: 15,
        all: true,
    };
    c.kill(kill).await.unwrap();

    let mut stream = c.attach(pb::AttachRequest::default()).await.unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        got.push((chunk.data[0], chunk.data.len()));
    }
    assert_eq!(got, [(b'a', 100_000), (b'b', 100_000), (b'c', 100_000)]);
    assert_eq!(stream.message().await.unwrap(), None, "stays at the end");

    let err = c.write(pb::WriteRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.message(), "stdin is closed");
}

#[tokio::test]
async fn a_stream_refused_before_it_opens_is_an_error_of_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let (address, _events) = serve(&dir);
    let c = ShimClient::new(&address);
    // The client reads Exec's answer as unary: the server refused before OPEN.
    let err = c.exec(pb::ExecRequest::default()).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::NotFound, "no such process")
    );
}

#[tokio::test]
async fn dropping_a_call_cancels_it_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (address, mut events) = serve(&dir);
    let c = ShimClient::new(&address);
    let wait = tokio::spawn(async move { c.wait(pb::WaitRequest {}).await });
    let mut next = async || tokio::time::timeout(PATIENCE, events.recv()).await.unwrap();
    assert_eq!(next().await, Some("waiting"));
    wait.abort();
    assert_eq!(next().await, Some("hangup"));
}

#[tokio::test]
async fn an_absent_shim_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix://{}", dir.path().join("none.sock").display());
    let err = ShimClient::connect(&address).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

#[tokio::test]
async fn another_protocol_version_is_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let (address, _events) = serve(&dir);
    let mut conn = UnixStream::connect(address.strip_prefix("unix://").unwrap())
        .await
        .unwrap();
    conn.write_all(&[9, Method::State as u8, 0, 0, 0, 0])
        .await
        .unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply[0], 1, "an ERROR frame");
    let text = String::from_utf8_lossy(&reply[6..]);
    assert!(
        text.contains("unsupported shim protocol version 9"),
        "{text}"
    );
}
