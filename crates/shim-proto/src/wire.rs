//! Reading and writing frames: a one-byte tag (and, in requests, the version byte before it),
//! a big-endian u32 length, the payload.

use std::io;

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
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|n| *n as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut buf = Vec::with_capacity(head.len() + 4 + payload.len());
    buf.extend_from_slice(head);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf).await
}

/// Reads a frame with `N` tag bytes: the tags and the payload.
pub(crate) async fn read_frame<const N: usize, R: AsyncRead + Unpin>(
    r: &mut R,
) -> io::Result<([u8; N], Vec<u8>)> {
    let mut head = [0; N];
    r.read_exact(&mut head).await?;
    let len = r.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is larger than {MAX_FRAME}"),
        ));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).await?;
    Ok((head, body))
}

/// The payload of an ERROR frame.
pub(crate) fn encode_error(e: &CallError) -> Vec<u8> {
    let mut p = Vec::with_capacity(1 + e.message.len());
    p.push(e.code as u8);
    p.extend_from_slice(e.message.as_bytes());
    p
}

pub(crate) fn decode_error(p: &[u8]) -> CallError {
    match p.split_first() {
        Some((code, msg)) => CallError::new(
            Code::from_u8(*code),
            String::from_utf8_lossy(msg).into_owned(),
        ),
        None => CallError::new(Code::Internal, "empty error frame"),
    }
}
