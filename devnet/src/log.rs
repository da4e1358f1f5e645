//! One channel's append-only block log.
//!
//! A log is a sequence of frames `[len: u32 LE][crc32c(bytes): u32 LE][bytes]`, one per
//! block, where `bytes` is the block's JSON. A block is appended and the file synced with
//! `fdatasync` *before* the block is announced, so an announced block survives any crash.
//! A crash mid-append leaves a torn frame at the end; opening the log cuts it off. A frame
//! whose checksum is wrong is treated the same way when it is the last frame. Damage in the
//! middle of the log (a bad frame followed by a good one), or a frame whose checksum holds but
//! whose block the node refuses, is not a torn tail: opening fails with an error rather than
//! cut off blocks that were announced.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) mod bulk;

const FRAME_HEADER: usize = 8;
/// No block frame is larger than this; a bigger length field means a damaged header.
pub const MAX_FRAME: u32 = 256 * 1024 * 1024;

/// Where a block's bytes are in a log file.
#[derive(Debug, Clone, Copy)]
struct Span {
    offset: u64,
    len: u32,
}

pub(crate) struct BlockLog {
    path: PathBuf,
    file: Arc<File>,
    end: u64,
    spans: Vec<Span>,
}

/// What opening a log found at its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tail {
    Clean,
    /// Bytes from `offset` on were cut off, for the reason given.
    Truncated {
        offset: u64,
        cut: u64,
        why: String,
    },
}

/// A block that can be read without holding the node's lock.
#[derive(Clone)]
pub(crate) struct BlockRef {
    file: Arc<File>,
    span: Span,
}

impl BlockRef {
    pub fn read(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.span.len as usize];
        self.file
            .read_exact_at(&mut buf, self.span.offset + FRAME_HEADER as u64)?;
        Ok(buf)
    }
}

impl BlockLog {
    /// Opens (or creates) the log at `path`, handing each intact block's bytes to `accept`
    /// in order. `accept` refusing a block (an error string) fails the open.
    pub fn open(
        path: &Path,
        mut accept: impl FnMut(u64, &[u8]) -> Result<(), String>,
    ) -> io::Result<(Self, Tail)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let size = file.metadata()?.len();
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let mut spans = Vec::new();
        let mut offset = 0u64;
        let mut buf = Vec::new();
        let mut tail = Tail::Clean;
        while offset < size {
            let why = match read_frame(&mut reader, size - offset, &mut buf) {
                Ok(()) => match accept(spans.len() as u64, &buf) {
                    Ok(()) => {
                        spans.push(Span {
                            offset,
                            len: buf.len() as u32,
                        });
                        offset += (FRAME_HEADER + buf.len()) as u64;
                        continue;
                    }
                    Err(why) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "{}: block {} at byte {offset} is intact but refused: {why}",
                                path.display(),
                                spans.len()
                            ),
                        ))
                    }
                },
                Err(why) => why,
            };
            if good_frame_follows(&file, offset, size) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: block {} at byte {offset} is damaged ({why}) but good blocks follow it; \
                         refusing to cut them off — restore the log from a replica",
                        path.display(),
                        spans.len()
                    ),
                ));
            }
            tail = Tail::Truncated {
                offset,
                cut: size - offset,
                why,
            };
            break;
        }
        drop(reader);
        if let Tail::Truncated { offset, .. } = tail {
            file.set_len(offset)?;
            file.sync_all()?;
        }
        Ok((
            Self {
                path: path.to_path_buf(),
                file: Arc::new(file),
                end: offset,
                spans,
            },
            tail,
        ))
    }

    /// Number of blocks in the log.
    pub fn len(&self) -> u64 {
        self.spans.len() as u64
    }

    /// Appends one block and, when `durable`, syncs it to disk before returning. On failure
    /// the file is cut back to where it was, so the log never holds a half-written frame that
    /// a later append would follow.
    pub fn append(&mut self, bytes: &[u8], durable: bool) -> io::Result<()> {
        let head = frame_header(bytes)?;
        // Two writes rather than a copy of the block into a frame buffer; a crash between
        // them leaves a torn frame, which opening cuts off like any other.
        let written = self
            .file
            .write_all_at(&head, self.end)
            .and_then(|()| {
                self.file
                    .write_all_at(bytes, self.end + FRAME_HEADER as u64)
            })
            .and_then(|()| {
                if durable {
                    self.file.sync_data()
                } else {
                    Ok(())
                }
            });
        if let Err(e) = written {
            let _ = self.file.set_len(self.end);
            return Err(e);
        }
        self.appended(bytes.len() as u32);
        Ok(())
    }

    /// Records a frame of `len` bytes written at the end of the file.
    fn appended(&mut self, len: u32) {
        self.spans.push(Span {
            offset: self.end,
            len,
        });
        self.end += FRAME_HEADER as u64 + u64::from(len);
    }

    /// Syncs everything appended so far to disk.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    pub fn block(&self, number: u64) -> Option<BlockRef> {
        let span = *self.spans.get(usize::try_from(number).ok()?)?;
        Some(BlockRef {
            file: self.file.clone(),
            span,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The header of the frame holding `bytes`: their length and CRC32C.
fn frame_header(bytes: &[u8]) -> io::Result<[u8; FRAME_HEADER]> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "block too large"))?;
    let mut head = [0u8; FRAME_HEADER];
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4..].copy_from_slice(&crc32c::crc32c(bytes).to_le_bytes());
    Ok(head)
}

/// Whether the frame at `offset`, if its length field is believed, is followed by an intact
/// frame — which tells mid-log damage from a torn tail.
fn good_frame_follows(file: &File, offset: u64, size: u64) -> bool {
    let mut head = [0u8; FRAME_HEADER];
    if file.read_exact_at(&mut head, offset).is_err() {
        return false;
    }
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let next = offset + FRAME_HEADER as u64 + u64::from(len);
    if len > MAX_FRAME || next >= size {
        return false;
    }
    let mut reader = BufReader::new(ReadAt { file, pos: next });
    read_frame(&mut reader, size - next, &mut Vec::new()).is_ok()
}

struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn read_frame(r: &mut impl Read, remaining: u64, buf: &mut Vec<u8>) -> Result<(), String> {
    if remaining < FRAME_HEADER as u64 {
        return Err(format!("torn frame header ({remaining} bytes)"));
    }
    let mut head = [0u8; FRAME_HEADER];
    r.read_exact(&mut head).map_err(|e| e.to_string())?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len > MAX_FRAME || u64::from(len) > remaining - FRAME_HEADER as u64 {
        return Err(format!(
            "torn frame: length {len}, {} bytes left",
            remaining - FRAME_HEADER as u64
        ));
    }
    buf.resize(len as usize, 0);
    r.read_exact(buf).map_err(|e| e.to_string())?;
    if crc32c::crc32c(buf) != crc {
        return Err("frame checksum mismatch".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen(path: &Path) -> (BlockLog, Tail, Vec<Vec<u8>>) {
        let mut seen = Vec::new();
        let (log, tail) = BlockLog::open(path, |_, b| {
            seen.push(b.to_vec());
            Ok(())
        })
        .unwrap();
        (log, tail, seen)
    }

    #[test]
    fn appends_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let (mut log, tail, seen) = reopen(&path);
        assert_eq!((tail, seen.len()), (Tail::Clean, 0));
        for i in 0..10u8 {
            log.append(&vec![i; 100 + i as usize], true).unwrap();
        }
        assert_eq!(log.block(3).unwrap().read().unwrap(), vec![3u8; 103]);
        assert!(log.block(10).is_none());
        drop(log);
        let (log, tail, seen) = reopen(&path);
        assert_eq!(tail, Tail::Clean);
        assert_eq!(seen.len(), 10);
        assert_eq!(log.len(), 10);
    }

    #[test]
    fn torn_and_corrupt_tails_are_cut_at_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let (mut log, _, _) = reopen(&path);
        for i in 0..3u8 {
            log.append(&[i; 50], true).unwrap();
        }
        drop(log);
        let full = std::fs::read(&path).unwrap();
        let frame = FRAME_HEADER + 50;
        // Torn: every length between the end of block 1 and the full file.
        for cut in 2 * frame + 1..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (mut log, tail, seen) = reopen(&path);
            assert_eq!(seen.len(), 2, "cut at {cut}");
            assert!(matches!(tail, Tail::Truncated { offset, .. } if offset == 2 * frame as u64));
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * frame as u64);
            // The log goes on cleanly after the cut.
            log.append(b"next", true).unwrap();
            drop(log);
            let (_, tail, seen) = reopen(&path);
            assert_eq!((tail, seen.len()), (Tail::Clean, 3));
            assert_eq!(seen[2], b"next");
        }
        // Corrupt: flip each byte of the last frame in turn.
        for i in 2 * frame..full.len() {
            let mut bad = full.clone();
            bad[i] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            let (_, tail, seen) = reopen(&path);
            assert_eq!(seen.len(), 2, "flip at {i}");
            assert!(matches!(tail, Tail::Truncated { .. }));
        }
    }

    #[test]
    fn a_refused_block_or_mid_log_damage_fails_the_open_and_keeps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let (mut log, _, _) = reopen(&path);
        for i in 0..4u8 {
            log.append(&[i; 20], true).unwrap();
        }
        drop(log);
        let before = std::fs::read(&path).unwrap();
        let err = BlockLog::open(
            &path,
            |n, _| if n == 2 { Err("bad".into()) } else { Ok(()) },
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("refused: bad"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);

        let mut damaged = before.clone();
        damaged[FRAME_HEADER + 20 + FRAME_HEADER + 3] ^= 1; // inside block 1's bytes
        std::fs::write(&path, &damaged).unwrap();
        let err = BlockLog::open(&path, |_, _| Ok(())).err().unwrap();
        assert!(err.to_string().contains("good blocks follow"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), damaged);
    }
}
