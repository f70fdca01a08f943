//! Reading and writing frames: a one-byte tag (and, in requests, the version byte before it),
//! a big-endian u32 length, the payload.

use std::io;

use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{CallError, Code, MAX_FRAME};

pub(crate) const MESSAGE: u8 = 0;
pub(crate) const ERROR: u8 = 1;
pub(crate) const END: u8 = 2;
pub(crate) const OPEN: u8 = 3;

/// Writes `head` (the tag bytes), the length and `payload` in one write.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    head: &[u8],
    payload: &[u8],
) -> io::Result<()> {
    let frame = frame(head, payload.len(), |buf| buf.extend_from_slice(payload))?;
    w.write_all(&frame).await
}

/// Writes a frame whose payload is `m`, encoded straight into the frame.
pub(crate) async fn write_message<W: AsyncWrite + Unpin, M: Message>(
    w: &mut W,
    head: &[u8],
    m: &M,
) -> io::Result<()> {
    let frame = frame(head, m.encoded_len(), |buf| m.encode_raw(buf))?;
    w.write_all(&frame).await
}

/// Writes an ERROR frame.
pub(crate) async fn write_error<W: AsyncWrite + Unpin>(w: &mut W, e: &CallError) -> io::Result<()> {
    let frame = frame(&[ERROR], 1 + e.message.len(), |buf| {
        buf.push(e.code as u8);
        buf.extend_from_slice(e.message.as_bytes());
    })?;
    w.write_all(&frame).await
}

/// `head`, the length, then the `len` bytes that `fill` appends.
fn frame(head: &[u8], len: usize, fill: impl FnOnce(&mut Vec<u8>)) -> io::Result<Vec<u8>> {
    let len32 = u32::try_from(len)
        .ok()
        .filter(|n| *n as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut buf = Vec::with_capacity(head.len() + 4 + len);
    buf.extend_from_slice(head);
    buf.extend_from_slice(&len32.to_be_bytes());
    fill(&mut buf);
    debug_assert_eq!(buf.len(), head.len() + 4 + len);
    Ok(buf)
}

/// Reads a frame with `N` tag bytes: the tags and the payload.
pub(crate) async fn read_frame<const N: usize, R: AsyncRead + Unpin>(
    r: &mut R,
) -> io::Result<([u8; N], Vec<u8>)> {
    let (head, len) = read_head::<N, _>(r).await?;
    if len > MAX_FRAME {
        return Err(too_large(len, MAX_FRAME));
    }
    Ok((head, read_payload(r, len).await?))
}

/// Reads the tag bytes and the claimed length of a frame, and nothing of its payload: the
/// length is checked before anything is allocated for it.
pub(crate) async fn read_head<const N: usize, R: AsyncRead + Unpin>(
    r: &mut R,
) -> io::Result<([u8; N], usize)> {
    let mut head = [0; N];
    r.read_exact(&mut head).await?;
    let len = r.read_u32().await?;
    Ok((head, usize::try_from(len).unwrap_or(usize::MAX)))
}

/// Reads a payload of `len` bytes (checked against its limit by the caller). The buffer grows
/// with what arrives, so a peer that claims more than it sends costs only what it sent.
pub(crate) async fn read_payload<R: AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
) -> io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(len.min(INITIAL_BUFFER));
    let want = u64::try_from(len).unwrap_or(u64::MAX);
    let got = (&mut *r).take(want).read_to_end(&mut body).await?;
    if got != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame cut short: {got} of {len} bytes"),
        ));
    }
    Ok(body)
}

/// What a payload buffer starts with, whatever length is claimed.
const INITIAL_BUFFER: usize = 64 << 10;

pub(crate) fn too_large(len: usize, max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("frame of {len} bytes is larger than {max}"),
    )
}

/// The call error an ERROR frame carries: its code, then the message.
pub(crate) fn decode_error(p: &[u8]) -> CallError {
    match p.split_first() {
        Some((code, msg)) => CallError::new(
            Code::from_u8(*code),
            String::from_utf8_lossy(msg).into_owned(),
        ),
        None => CallError::new(Code::Internal, "empty error frame"),
    }
}
