//! Reading blocks: a peer's block file, or one serialized `common.Block`.
//!
//! A block file (`blockfile_000000` in a peer's `chains/chains/<channel>/`) is a sequence of
//! entries, each a varint length and then that many bytes of one block in the block store's
//! own serialization (Fabric's `common/ledger/blkstorage/block_serialization.go`), which is
//! not a protobuf message: varint number, length-prefixed data hash, length-prefixed
//! previous hash, varint transaction count and each transaction envelope length-prefixed,
//! varint metadata count and each metadata entry length-prefixed. Lengths and counts are
//! protobuf varints.
//!
//! Every read is bounds-checked: bad input is a [`ReadError`] naming what was being read and
//! the byte offset in the input where it went wrong, never a panic.

use prost::Message;

use crate::proto::{Block, BlockData, BlockHeader, BlockMetadata};

/// Why a block file or block could not be read. Offsets count bytes from the start of the
/// input.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    /// The input ended inside a value.
    #[error("truncated at byte {offset}: {what} needs {needed} bytes, {available} left")]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: u64,
        available: usize,
    },
    /// A varint longer than ten bytes or beyond 64 bits.
    #[error("bad varint at byte {offset} ({what})")]
    BadVarint { what: &'static str, offset: usize },
    /// A count of transactions or metadata entries that the block's entry cannot hold.
    #[error("{what} count {count} at byte {offset} runs past the end of its block after {read}")]
    Count {
        what: &'static str,
        offset: usize,
        count: u64,
        read: usize,
    },
    /// A block entry's bytes were not all used by the block they hold.
    #[error("block entry at byte {offset} has {extra} bytes after its block")]
    TrailingBytes { offset: usize, extra: usize },
    /// A protobuf message that does not decode.
    #[error("{what} at byte {offset} does not decode: {source}")]
    Protobuf {
        what: &'static str,
        offset: usize,
        #[source]
        source: prost::DecodeError,
    },
    /// A serialized block without a header.
    #[error("block at byte {offset} has no header")]
    NoHeader { offset: usize },
    /// An empty input.
    #[error("empty input: no block")]
    Empty,
}

/// One block read from a block file, with where its entry starts.
#[derive(Debug, Clone, PartialEq)]
pub struct FileBlock {
    /// Byte offset of the block's entry (its length prefix) in the file.
    pub offset: usize,
    pub block: Block,
}

/// A bounds-checked reader over the input; `pos` is an offset into the whole input.
struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    fn new(input: &'a [u8], pos: usize, end: usize) -> Self {
        Cursor { input, pos, end }
    }

    fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, ReadError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..10u32 {
            if self.pos >= self.end {
                return Err(ReadError::Truncated {
                    what,
                    offset: start,
                    needed: u64::from(i) + 1,
                    available: self.remaining() + i as usize,
                });
            }
            let byte = *self.input.get(self.pos).ok_or(ReadError::BadVarint {
                what,
                offset: start,
            })?;
            self.pos += 1;
            let low = u64::from(byte & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if i == 9 && byte > 1 {
                return Err(ReadError::BadVarint {
                    what,
                    offset: start,
                });
            }
            value |= low << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ReadError::BadVarint {
            what,
            offset: start,
        })
    }

    /// `len` bytes; the error names where the length prefix started (`at`).
    fn take(&mut self, what: &'static str, at: usize, len: u64) -> Result<&'a [u8], ReadError> {
        let available = self.remaining();
        let short = ReadError::Truncated {
            what,
            offset: at,
            needed: len,
            available,
        };
        let len = usize::try_from(len).map_err(|_| short.clone())?;
        if len > available {
            return Err(short);
        }
        let bytes = self.input.get(self.pos..self.pos + len).ok_or(short)?;
        self.pos += len;
        Ok(bytes)
    }

    /// A varint count (named `count_name` in errors), then that many length-prefixed
    /// items; running out before the count is a [`ReadError::Count`] of `entries`.
    fn prefixed_list(
        &mut self,
        count_name: &'static str,
        entries: &'static str,
        item: &'static str,
    ) -> Result<Vec<Vec<u8>>, ReadError> {
        let count_at = self.pos;
        let count = self.varint(count_name)?;
        let mut items = Vec::new();
        for _ in 0..count {
            if self.remaining() == 0 {
                return Err(ReadError::Count {
                    what: entries,
                    offset: count_at,
                    count,
                    read: items.len(),
                });
            }
            items.push(self.prefixed(item)?.to_vec());
        }
        Ok(items)
    }

    /// A varint length and that many bytes.
    fn prefixed(&mut self, what: &'static str) -> Result<&'a [u8], ReadError> {
        let at = self.pos;
        let len = self.varint(what)?;
        self.take(what, at, len)
    }
}

/// Every block of a peer's block file, in file order. An empty file is an error; so is a
/// torn last entry (the peer truncates those on restart, a reader reports them).
pub fn read_block_file(input: &[u8]) -> Result<Vec<FileBlock>, ReadError> {
    if input.is_empty() {
        return Err(ReadError::Empty);
    }
    let mut cursor = Cursor::new(input, 0, input.len());
    let mut blocks = Vec::new();
    while cursor.remaining() > 0 {
        let offset = cursor.pos;
        let entry = cursor.prefixed("block entry")?;
        let start = cursor.pos - entry.len();
        let block = read_serialized_block(input, start, start + entry.len(), offset)?;
        blocks.push(FileBlock { offset, block });
    }
    Ok(blocks)
}

/// One block in the block store's serialization, `input[start..end]`.
fn read_serialized_block(
    input: &[u8],
    start: usize,
    end: usize,
    entry: usize,
) -> Result<Block, ReadError> {
    let mut c = Cursor::new(input, start, end);
    let number = c.varint("block number")?;
    let data_hash = c.prefixed("data hash")?.to_vec();
    let previous_hash = c.prefixed("previous hash")?.to_vec();
    let data = c.prefixed_list("transaction count", "transaction", "transaction envelope")?;
    let metadata = c.prefixed_list("metadata count", "metadata entry", "metadata entry")?;
    if c.remaining() > 0 {
        return Err(ReadError::TrailingBytes {
            offset: entry,
            extra: c.remaining(),
        });
    }
    Ok(Block {
        header: Some(BlockHeader {
            number,
            previous_hash,
            data_hash,
        }),
        data: Some(BlockData { data }),
        metadata: Some(BlockMetadata { metadata }),
    })
}

/// One serialized `common.Block` protobuf message (a `.block` file, as `configtxgen`
/// writes a genesis block or `peer channel fetch` saves one).
pub fn read_block(input: &[u8]) -> Result<Block, ReadError> {
    if input.is_empty() {
        return Err(ReadError::Empty);
    }
    let block = Block::decode(input).map_err(|source| ReadError::Protobuf {
        what: "block",
        offset: 0,
        source,
    })?;
    if block.header.is_none() {
        return Err(ReadError::NoHeader { offset: 0 });
    }
    Ok(block)
}

/// The block store's serialization of `block` as one block-file entry (length prefix
/// included): what a peer appends to its block file. For tests and fixtures.
pub fn write_block_entry(block: &Block, out: &mut Vec<u8>) {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn prefixed(b: &[u8], out: &mut Vec<u8>) {
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }
    let mut body = Vec::new();
    let header = block.header.clone().unwrap_or_default();
    varint(header.number, &mut body);
    prefixed(&header.data_hash, &mut body);
    prefixed(&header.previous_hash, &mut body);
    let data = block.data.clone().unwrap_or_default().data;
    varint(data.len() as u64, &mut body);
    for tx in &data {
        prefixed(tx, &mut body);
    }
    let metadata = block.metadata.clone().unwrap_or_default().metadata;
    varint(metadata.len() as u64, &mut body);
    for m in &metadata {
        prefixed(m, &mut body);
    }
    prefixed(&body, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn reads_every_shipped_block_file_in_order() {
        for (name, count) in [
            ("sample_prod.blockfile", None),
            ("sample_bad_ledger.blockfile", None),
            ("glued_together.blockfile", Some(9)),
        ] {
            let blocks = read_block_file(&testdata(name)).unwrap();
            assert!(!blocks.is_empty(), "{name}");
            if let Some(count) = count {
                assert!(blocks.len() >= count, "{name}: {} blocks", blocks.len());
            }
            for (i, b) in blocks.iter().enumerate() {
                assert_eq!(b.block.header.as_ref().unwrap().number, i as u64, "{name}");
            }
        }
    }

    #[test]
    fn round_trips_the_entry_format() {
        let input = testdata("sample_prod.blockfile");
        let blocks = read_block_file(&input).unwrap();
        let mut out = Vec::new();
        for b in &blocks {
            write_block_entry(&b.block, &mut out);
        }
        assert_eq!(out, input);
    }

    #[test]
    fn reads_the_genesis_block() {
        let block = read_block(&testdata("mychannel_genesis.block")).unwrap();
        assert_eq!(block.header.unwrap().number, 0);
        assert_eq!(block.data.unwrap().data.len(), 1);
    }

    #[test]
    fn every_truncation_is_an_error_with_an_offset() {
        let input = testdata("sample_prod.blockfile");
        let blocks = read_block_file(&input).unwrap();
        let second = blocks[1].offset;
        // Cutting anywhere inside the first entry fails; cutting at its end reads one block.
        for cut in [1, 2, 10, 100, second - 1] {
            let err = read_block_file(&input[..cut]).unwrap_err();
            assert!(
                matches!(err, ReadError::Truncated { .. }),
                "cut {cut}: {err}"
            );
            assert!(err.to_string().contains("byte"), "{err}");
        }
        assert_eq!(read_block_file(&input[..second]).unwrap().len(), 1);
        assert_eq!(read_block_file(&[]).unwrap_err(), ReadError::Empty);
    }

    #[test]
    fn bad_varints_and_trailing_bytes_are_errors() {
        let err = read_block_file(&[0xff; 11]).unwrap_err();
        assert!(
            matches!(err, ReadError::BadVarint { offset: 0, .. }),
            "{err}"
        );
        // An entry of 6 bytes with 5 there; then 6 bytes: number 0, empty hashes, no
        // transactions, no metadata, and one byte too many.
        let err = read_block_file(&[6, 0, 0, 0, 0, 0]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = read_block_file(&[6, 0, 0, 0, 0, 0, 7]).unwrap_err();
        assert_eq!(
            err,
            ReadError::TrailingBytes {
                offset: 0,
                extra: 1
            }
        );
        // A huge transaction count on a tiny entry does not allocate for it.
        let err = read_block_file(&[
            13, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ])
        .unwrap_err();
        assert_eq!(
            err,
            ReadError::Count {
                what: "transaction",
                offset: 4,
                count: u64::MAX,
                read: 0
            }
        );
        assert!(read_block(&[0x0a, 0x05, 0x08]).is_err());
        assert_eq!(
            read_block(&[0x10, 0x01]),
            Err(ReadError::Protobuf {
                what: "block",
                offset: 0,
                source: Block::decode(&[0x10u8, 0x01][..]).unwrap_err(),
            })
        );
    }
}
