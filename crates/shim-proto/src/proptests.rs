//! Property tests of the framing a shim reads from its socket (and the runtime from the
//! shim's): whatever bytes arrive, reading them gives a frame, a call or an error, never a
//! panic (which would take down a shim and, with it, nothing less than its container's
//! supervision); and every valid frame reads back as written. 10,000 cases each.

use std::{path::PathBuf, sync::Arc};

use proptest::prelude::*;
use prost::Message;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{UnixListener, UnixStream},
    runtime::Runtime,
};

use crate::{
    CallError, Code, MAX_FRAME, MAX_SMALL_REQUEST, Method, PROTOCOL_VERSION, ShimClient,
    server::Call, v1, wire,
};

fn rt() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Bytes shaped like frames: a head, a length that may or may not match what follows (or be
/// past `MAX_FRAME`), and a payload that may be cut short; or any bytes at all.
fn frame_like(head_len: usize) -> impl Strategy<Value = Vec<u8>> {
    let shaped = (
        prop::collection::vec(any::<u8>(), head_len),
        prop_oneof![
            0u32..64,
            Just(MAX_FRAME as u32),
            Just(MAX_FRAME as u32 + 1),
            Just(u32::MAX),
            any::<u32>(),
        ],
        prop::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(head, len, payload)| {
            let mut b = head;
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(&payload);
            b
        });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..96), shaped]
}

/// What `read_frame::<N>` must make of `bytes`: the head and the payload of a whole frame
/// within the limit, or nothing.
fn expected<const N: usize>(bytes: &[u8]) -> Option<([u8; N], Vec<u8>)> {
    let head: [u8; N] = bytes.get(..N)?.try_into().ok()?;
    let len = u32::from_be_bytes(bytes.get(N..N + 4)?.try_into().ok()?) as usize;
    if len > MAX_FRAME {
        return None;
    }
    Some((head, bytes.get(N + 4..N + 4 + len)?.to_vec()))
}

/// Bytes shaped like requests: mostly this version and a known method (or not), a length
/// about the method's limit or small, and a payload that may be cut short.
fn request_like() -> impl Strategy<Value = Vec<u8>> {
    let shaped = (
        prop_oneof![4 => Just(PROTOCOL_VERSION), 1 => any::<u8>()],
        prop_oneof![4 => 1u8..=14, 1 => any::<u8>()],
        prop_oneof![
            0u32..64,
            Just(MAX_SMALL_REQUEST as u32),
            Just(MAX_SMALL_REQUEST as u32 + 1),
            Just(MAX_FRAME as u32),
            Just(MAX_FRAME as u32 + 1),
            any::<u32>(),
        ],
        prop::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(version, method, len, payload)| {
            let mut b = vec![version, method];
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(&payload);
            b
        });
    prop_oneof![frame_like(2), shaped]
}

/// What a shim must make of request bytes, judging the head before reading any of the body.
#[derive(Debug, PartialEq)]
enum Judged {
    /// Closed before a whole head, or before the whole body of a request it takes: no answer.
    Nothing,
    /// Another version, an unknown method, or longer than the method's limit: an error frame.
    Refused,
    /// A call of the method, with the body.
    Call(Method, Vec<u8>),
}

fn judged(bytes: &[u8]) -> Judged {
    let (Some(&[version, method]), Some(len)) = (bytes.get(..2), bytes.get(2..6)) else {
        return Judged::Nothing;
    };
    let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
    match Method::from_u8(method) {
        Some(m) if version == PROTOCOL_VERSION && len <= m.max_request() => {
            match bytes.get(6..6 + len) {
                Some(body) => Judged::Call(m, body.to_vec()),
                None => Judged::Nothing,
            }
        }
        _ => Judged::Refused,
    }
}

fn code() -> impl Strategy<Value = Code> {
    prop_oneof![
        Just(Code::NotFound),
        Just(Code::FailedPrecondition),
        Just(Code::InvalidArgument),
        Just(Code::Internal),
        Just(Code::Unavailable),
    ]
}

/// A request of every method, with arbitrary fields.
fn request() -> impl Strategy<Value = (Method, Vec<u8>)> {
    let s = || ".{0,16}";
    prop_oneof![
        Just((Method::State, v1::StateRequest {}.encode_to_vec())),
        (s(), any::<u32>(), any::<bool>()).prop_map(|(exec_id, signal, all)| (
            Method::Kill,
            v1::KillRequest {
                exec_id,
                signal,
                all
            }
            .encode_to_vec()
        )),
        (s(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(exec_id, data)| (
            Method::Write,
            v1::WriteRequest { exec_id, data }.encode_to_vec()
        )),
        (s(), any::<u32>(), any::<u32>()).prop_map(|(exec_id, width, height)| (
            Method::Resize,
            v1::ResizeRequest {
                exec_id,
                width,
                height
            }
            .encode_to_vec()
        )),
        s().prop_map(|exec_id| (
            Method::Attach,
            v1::AttachRequest { exec_id }.encode_to_vec()
        )),
        s().prop_map(|exec_id| (
            Method::ExecWait,
            v1::ExecWaitRequest { exec_id }.encode_to_vec()
        )),
    ]
}

/// Decodes `body` as the request of every method: each gives a message or an error.
fn decode_as_every_request(call: &Call) {
    let _ = call.request::<v1::StateRequest>();
    let _ = call.request::<v1::StartRequest>();
    let _ = call.request::<v1::KillRequest>();
    let _ = call.request::<v1::WaitRequest>();
    let _ = call.request::<v1::AttachRequest>();
    let _ = call.request::<v1::WriteRequest>();
    let _ = call.request::<v1::CloseStdinRequest>();
    let _ = call.request::<v1::ResizeRequest>();
    let _ = call.request::<v1::ExecRequest>();
    let _ = call.request::<v1::ExecStartRequest>();
    let _ = call.request::<v1::ExecStateRequest>();
    let _ = call.request::<v1::ExecWaitRequest>();
    let _ = call.request::<v1::DeleteRequest>();
    let _ = call.request::<v1::ShutdownRequest>();
}

/// What the shim makes of `bytes` sent on a new connection (then closed for writing): the
/// call, or None; and what it wrote back.
async fn accept(bytes: &[u8]) -> (Option<Call>, Vec<u8>) {
    let (mut client, server) = UnixStream::pair().expect("socketpair");
    client.write_all(bytes).await.expect("write");
    client.shutdown().await.expect("shutdown");
    let call = Call::accept(server).await.map(|(call, _)| call);
    // Refused, the shim's half is dropped: read what it answered. A close with bytes of ours
    // unread resets the connection once its answer has been read.
    let mut answer = Vec::new();
    if call.is_none() {
        let mut buf = [0u8; 256];
        while let Ok(n @ 1..) = client.read(&mut buf).await {
            answer.extend_from_slice(&buf[..n]);
        }
    }
    (call, answer)
}

/// A socket whose "shim" answers every call with the next bytes it is given, then hangs up.
struct FakeShim {
    rt: Runtime,
    client: ShimClient,
    answers: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    _dir: tempfile::TempDir,
}

impl FakeShim {
    fn new() -> FakeShim {
        let dir = tempfile::tempdir().expect("tempdir");
        let path: PathBuf = dir.path().join("s.sock");
        let rt = rt();
        let (answers, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let listener = rt
            .block_on(async { UnixListener::bind(&path) })
            .expect("bind");
        rt.spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let Some(answer) = rx.recv().await else {
                    return;
                };
                // The request is read whole first, as a shim does.
                let _ = wire::read_frame::<2, _>(&mut conn).await;
                let _ = conn.write_all(&answer).await;
            }
        });
        FakeShim {
            rt,
            client: ShimClient::new(&format!("unix://{}", path.display())),
            answers,
            _dir: dir,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Any bytes: a frame exactly when they hold a whole one within the limit.
    #[test]
    fn any_bytes_read_as_a_frame_or_an_error(one in frame_like(1), two in frame_like(2)) {
        let rt = rt();
        let got = rt.block_on(wire::read_frame::<1, _>(&mut one.as_slice())).ok();
        prop_assert_eq!(got, expected::<1>(&one));
        let got = rt.block_on(wire::read_frame::<2, _>(&mut two.as_slice())).ok();
        prop_assert_eq!(got, expected::<2>(&two));
        let _ = wire::decode_error(&one);
    }

    /// Every frame written reads back as written, and takes exactly its bytes.
    #[test]
    fn frames_round_trip(
        head in prop::collection::vec(any::<u8>(), 2),
        payload in prop::collection::vec(any::<u8>(), 0..600),
        trailing in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let rt = rt();
        let mut buf = Vec::new();
        rt.block_on(wire::write_frame(&mut buf, &head, &payload)).expect("write");
        prop_assert_eq!(buf.len(), head.len() + 4 + payload.len());
        buf.extend_from_slice(&trailing);
        let mut r = buf.as_slice();
        let (h, p) = rt.block_on(wire::read_frame::<2, _>(&mut r)).expect("read");
        prop_assert_eq!(&h[..], &head[..]);
        prop_assert_eq!(p, payload);
        prop_assert_eq!(r, &trailing[..]);
    }

    /// Error frames carry their code and message; messages carry their fields.
    #[test]
    fn errors_and_messages_round_trip(
        code in code(),
        message in ".{0,40}",
        chunk_stream in any::<i32>(),
        data in prop::collection::vec(any::<u8>(), 0..300),
        exit_code in any::<i32>(),
        exited_at in ".{0,30}",
        oom in any::<bool>(),
    ) {
        let rt = rt();
        let e = CallError::new(code, message);
        let mut buf = Vec::new();
        rt.block_on(wire::write_error(&mut buf, &e)).expect("write");
        let ([tag], body) = rt.block_on(wire::read_frame::<1, _>(&mut buf.as_slice())).expect("read");
        prop_assert_eq!(tag, wire::ERROR);
        prop_assert_eq!(wire::decode_error(&body), e);

        let chunk = v1::AttachChunk { stream: chunk_stream, data };
        let exit = v1::ExitStatus { exit_code, exited_at, oom_killed: oom, ..Default::default() };
        let mut buf = Vec::new();
        rt.block_on(wire::write_message(&mut buf, &[wire::MESSAGE], &chunk)).expect("write");
        rt.block_on(wire::write_message(&mut buf, &[wire::MESSAGE], &exit)).expect("write");
        let mut r = buf.as_slice();
        let ([t1], b1) = rt.block_on(wire::read_frame::<1, _>(&mut r)).expect("read");
        let ([t2], b2) = rt.block_on(wire::read_frame::<1, _>(&mut r)).expect("read");
        prop_assert_eq!((t1, t2), (wire::MESSAGE, wire::MESSAGE));
        prop_assert_eq!(v1::AttachChunk::decode(b1.as_slice()).expect("chunk"), chunk);
        prop_assert_eq!(v1::ExitStatus::decode(b2.as_slice()).expect("exit"), exit);
        prop_assert!(r.is_empty());
    }

    /// What a shim accepts from any bytes on its socket: a call only from a whole request of
    /// this version and a known method within its limit (whose body then decodes as any
    /// request or fails), an InvalidArgument error frame for another version or method or a
    /// claimed length past the method's limit (whatever follows), nothing for the rest.
    #[test]
    fn the_shim_accepts_a_call_from_any_bytes(bytes in request_like()) {
        let rt = rt();
        let (call, answer) = rt.block_on(accept(&bytes));
        match (&call, judged(&bytes)) {
            (Some(call), Judged::Call(method, body)) => {
                prop_assert_eq!(call.method(), method);
                prop_assert!(body.len() <= method.max_request());
                decode_as_every_request(call);
            }
            (None, Judged::Refused) => {
                let ([tag], body) = rt
                    .block_on(wire::read_frame::<1, _>(&mut answer.as_slice()))
                    .expect("an error frame");
                prop_assert_eq!(tag, wire::ERROR);
                prop_assert_eq!(wire::decode_error(&body).code, Code::InvalidArgument);
            }
            (None, Judged::Nothing) => prop_assert!(answer.is_empty()),
            (call, want) => prop_assert!(false, "{:?} for {:?}", call.as_ref().map(Call::method), want),
        }
    }

    /// Every valid request is accepted with its method and decodes to what was sent.
    #[test]
    fn valid_requests_are_accepted((method, body) in request()) {
        let rt = rt();
        let mut bytes = vec![PROTOCOL_VERSION, method as u8];
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&body);
        let (call, _) = rt.block_on(accept(&bytes));
        let call = call.expect("a call");
        prop_assert_eq!(call.method(), method);
        let again = match method {
            Method::Kill => call.request::<v1::KillRequest>().map(|m| m.encode_to_vec()),
            Method::Write => call.request::<v1::WriteRequest>().map(|m| m.encode_to_vec()),
            Method::Resize => call.request::<v1::ResizeRequest>().map(|m| m.encode_to_vec()),
            Method::Attach => call.request::<v1::AttachRequest>().map(|m| m.encode_to_vec()),
            Method::ExecWait => call.request::<v1::ExecWaitRequest>().map(|m| m.encode_to_vec()),
            _ => call.request::<v1::StateRequest>().map(|m| m.encode_to_vec()),
        };
        prop_assert_eq!(again.expect("decodes"), body);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Whatever a shim answers (any bytes, then the connection closed), a unary call and an
    /// attach give a value or an error, never a panic; a whole MESSAGE frame of a valid
    /// message gives that message.
    #[test]
    fn the_runtime_reads_any_answer(answer in frame_like(1), exit_code in any::<i32>()) {
        thread_local! {
            static SHIM: Arc<FakeShim> = Arc::new(FakeShim::new());
        }
        let shim = SHIM.with(Arc::clone);
        let _ = shim.answers.send(answer.clone());
        let state = shim.rt.block_on(shim.client.state(v1::StateRequest {}));
        match expected::<1>(&answer) {
            Some(([wire::ERROR], body)) => prop_assert_eq!(state, Err(wire::decode_error(&body))),
            Some(([wire::MESSAGE], _)) => {}
            Some(_) => prop_assert_eq!(state.map_err(|e| e.code), Err(Code::Internal)),
            None => prop_assert_eq!(state.map_err(|e| e.code), Err(Code::Unavailable)),
        }
        let _ = shim.answers.send(answer);
        if let Ok(mut stream) = shim.rt.block_on(shim.client.attach(v1::AttachRequest::default())) {
            for _ in 0..4 {
                if !matches!(shim.rt.block_on(stream.message()), Ok(Some(_))) {
                    break;
                }
            }
        }

        let exit = v1::ExitStatus { exit_code, ..Default::default() };
        let mut good = Vec::new();
        shim.rt
            .block_on(wire::write_message(&mut good, &[wire::MESSAGE], &exit))
            .expect("write");
        let _ = shim.answers.send(good);
        prop_assert_eq!(shim.rt.block_on(shim.client.wait(v1::WaitRequest {})), Ok(exit));
    }
}

/// A request claiming more than its method's limit is refused at once, before any of its
/// body arrives (the connection stays open: a shim that waited for the body would hang here).
#[test]
fn an_oversized_request_is_refused_before_its_body() {
    let rt = rt();
    rt.block_on(async {
        for (method, len) in [
            (Method::State, MAX_FRAME),
            (Method::Kill, MAX_SMALL_REQUEST + 1),
            (Method::Write, MAX_FRAME + 1),
        ] {
            let (mut client, server) = UnixStream::pair().expect("socketpair");
            let mut head = vec![PROTOCOL_VERSION, method as u8];
            head.extend_from_slice(&(len as u32).to_be_bytes());
            head.extend_from_slice(b"abc");
            client.write_all(&head).await.expect("write");
            let accepted =
                tokio::time::timeout(std::time::Duration::from_secs(10), Call::accept(server))
                    .await
                    .expect("the shim waited for the body");
            assert!(accepted.is_none());
            let ([tag], body) = wire::read_frame::<1, _>(&mut client)
                .await
                .expect("an answer");
            assert_eq!(tag, wire::ERROR);
            let e = wire::decode_error(&body);
            assert_eq!(e.code, Code::InvalidArgument);
            assert!(
                e.message
                    .contains(&format!("request of {len} bytes is larger than")),
                "{e}"
            );
        }
    });
}
