//! Upload messages from a request body: the chunks that have arrived already go to the
//! service as one message (up to [`MESSAGE_BYTES`]), instead of one message per chunk the
//! client's writes make (a build context of 20 MiB arrives in some 32 KiB chunks: each
//! message costs a trip through the relay tasks and the gRPC stream on both sides). Nothing
//! waits for more: what is not ready yet goes in the next message.

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, Stream, StreamExt};

/// The most bytes one upload message carries (well under gRPC's 4 MiB message limit).
pub(crate) const MESSAGE_BYTES: usize = 1 << 20;

/// An item of the body read ahead: its end (`None`) or an error.
pub(crate) type Ahead = Option<Result<Bytes, String>>;

/// `first` and the chunks of `data` that are ready now, up to [`MESSAGE_BYTES`]; with the item
/// that stopped the gathering when it is the body's end or an error. A chunk that is alone
/// goes as it is, not copied.
pub(crate) fn gather<S>(first: Bytes, data: &mut S) -> (Bytes, Option<Ahead>)
where
    S: Stream<Item = Result<Bytes, String>> + Unpin,
{
    let mut more: Option<BytesMut> = None;
    let mut len = first.len();
    let mut ahead = None;
    while len < MESSAGE_BYTES {
        match data.next().now_or_never() {
            // Nothing more has arrived.
            None => break,
            Some(Some(Ok(b))) => {
                len += b.len();
                more.get_or_insert_with(|| BytesMut::from(&first[..]))
                    .extend_from_slice(&b);
            }
            Some(item) => {
                ahead = Some(item);
                break;
            }
        }
    }
    (more.map_or(first, BytesMut::freeze), ahead)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(n: usize, len: usize) -> Vec<Result<Bytes, String>> {
        (0..n)
            .map(|i| Ok(Bytes::from(vec![i as u8; len])))
            .collect()
    }

    #[test]
    fn ready_chunks_make_one_message_up_to_the_limit() {
        // 40 chunks of 32 KiB ready, then the end: two messages (1 MiB, then the rest).
        let mut s = futures::stream::iter(chunks(40, 32 << 10));
        let first = s.next().now_or_never().flatten().unwrap().unwrap();
        let (one, ahead) = gather(first, &mut s);
        assert_eq!(one.len(), MESSAGE_BYTES);
        assert!(ahead.is_none());
        assert_eq!(one[(32 << 10) * 31], 31, "in order");
        let first = s.next().now_or_never().flatten().unwrap().unwrap();
        let (two, ahead) = gather(first, &mut s);
        assert_eq!(two.len(), 8 * (32 << 10));
        assert!(matches!(ahead, Some(None)), "the end is read ahead");
    }

    #[test]
    fn an_error_after_the_data_is_kept_for_the_next_message() {
        let mut items = chunks(2, 10);
        items.push(Err("broke off".to_owned()));
        let mut s = futures::stream::iter(items);
        let first = s.next().now_or_never().flatten().unwrap().unwrap();
        let (data, ahead) = gather(first, &mut s);
        assert_eq!(data.len(), 20);
        assert!(matches!(ahead, Some(Some(Err(e))) if e == "broke off"));
    }

    #[test]
    fn nothing_waits_for_a_chunk_not_yet_arrived() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, String>>();
        let mut s = rx;
        tx.unbounded_send(Ok(Bytes::from_static(b"b"))).unwrap();
        let (data, ahead) = gather(Bytes::from_static(b"a"), &mut s);
        assert_eq!(&data[..], b"ab");
        assert!(
            ahead.is_none(),
            "the sender is still open: pending, not the end"
        );
        drop(tx);
    }
}
