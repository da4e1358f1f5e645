//! Appending many blocks to the channel logs at once: the seeder's writer.
//!
//! The live node appends one block and syncs it before announcing it ([`BlockLog::append`]).
//! The seeder writes one to two gigabytes of blocks that nobody reads before it returns.
//! Through the page cache, the kernel first copies every byte into fresh cache pages and
//! then writes them back, and on these virtual machines that costs more CPU than the
//! writing: `dd` of 1.75 GB took 2.3–5.1 s of system time buffered and 0.3–0.4 s with
//! `O_DIRECT`, on a seed whose two cores are its limit. So the frames are gathered into
//! page-aligned chunks that a writer thread writes with `O_DIRECT`, bypassing the page
//! cache, while the sealer goes on; the last, partial chunk of each log goes through the
//! page cache, and [`BulkWriter::finish`] syncs everything. Where the file system refuses
//! `O_DIRECT` (tmpfs, for one) the chunks go through the page cache too.
//!
//! The frames are the same as [`BlockLog::append`]'s, and each appended block is recorded
//! in its [`BlockLog`], so after `finish` the logs are exactly what appending block by
//! block would have left. Before `finish` returns, a block may not be on disk yet.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::{frame_header, BlockLog};

/// Alignment of direct writes: file offset, length and memory. Block devices need their
/// logical block size (512 bytes here); 4 KiB satisfies every common one.
const ALIGN: usize = 4096;
/// Bytes per direct write.
pub const CHUNK: usize = 4 << 20;
/// Chunks in flight or being filled, across all logs: enough to keep the disk busy while
/// the sealer fills the next ones, and a bound on how far the sealer runs ahead of the disk.
const BUFFERS: usize = 8;
/// Chunks free beside the one each log fills, however many logs there are (a seed with
/// regional channels has up to 39): with none, the first full chunk would wait forever.
const SPARE: usize = 2;

/// `CHUNK` bytes at an `ALIGN`-aligned address.
pub struct Chunk {
    raw: Vec<u8>,
    start: usize,
}

impl Chunk {
    pub fn new() -> Self {
        let raw = vec![0u8; CHUNK + ALIGN];
        let start = raw.as_ptr().align_offset(ALIGN);
        Self { raw, start }
    }

    pub fn bytes(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + CHUNK]
    }
}

impl Default for Chunk {
    fn default() -> Self {
        Self::new()
    }
}

/// `path` opened for writing with `O_DIRECT`, or `None` where the file system refuses it.
pub fn open_direct(path: &Path) -> Option<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

/// One log's unwritten end: the chunk being filled, which starts at file offset `start`.
struct Tail {
    path: PathBuf,
    /// The log opened with `O_DIRECT`, when the file system allows it.
    direct: Option<Arc<File>>,
    buffered: Arc<File>,
    start: u64,
    chunk: Chunk,
    filled: usize,
}

/// A full chunk on its way to the writer thread.
struct Write {
    tail: usize,
    direct: Option<Arc<File>>,
    buffered: Arc<File>,
    offset: u64,
    chunk: Chunk,
}

/// Appends frames to several block logs through a writer thread (see the module docs).
pub(crate) struct BulkWriter {
    tails: Vec<Tail>,
    free: mpsc::Receiver<Chunk>,
    writes: Option<mpsc::SyncSender<Write>>,
    writer: Option<JoinHandle<Result<(), (usize, io::Error)>>>,
}

impl BulkWriter {
    /// A writer appending to `logs` (log `i` is the one [`BulkWriter::append`] calls `i`).
    pub fn new<'a>(logs: impl IntoIterator<Item = &'a BlockLog>) -> io::Result<Self> {
        let mut tails = Vec::new();
        for log in logs {
            let start = log.end - log.end % ALIGN as u64;
            let mut chunk = Chunk::new();
            let filled = (log.end - start) as usize;
            // The chunk starts where the log's last aligned block does: its first bytes are
            // already in the file and are written again, unchanged.
            log.file
                .read_exact_at(&mut chunk.bytes()[..filled], start)?;
            let direct = open_direct(&log.path).map(Arc::new);
            tails.push(Tail {
                path: log.path.clone(),
                direct,
                buffered: log.file.clone(),
                start,
                chunk,
                filled,
            });
        }
        let spare = BUFFERS.saturating_sub(tails.len()).max(SPARE);
        let (free_tx, free) = mpsc::sync_channel(spare);
        for _ in 0..spare {
            let _ = free_tx.send(Chunk::new());
        }
        let (writes, queue) = mpsc::sync_channel::<Write>(spare);
        let writer = std::thread::Builder::new()
            .name("seed-writer".into())
            .spawn(move || write_loop(queue, free_tx))?;
        Ok(Self {
            tails,
            free,
            writes: Some(writes),
            writer: Some(writer),
        })
    }

    /// Appends `bytes` as one frame to log `ix`, which is `log`, and records the block in
    /// `log`. The bytes reach the disk later (at the latest in [`BulkWriter::finish`]).
    pub fn append(&mut self, ix: usize, log: &mut BlockLog, bytes: &[u8]) -> io::Result<()> {
        let head = frame_header(bytes)?;
        self.put(ix, &head)?;
        self.put(ix, bytes)?;
        log.appended(bytes.len() as u32);
        Ok(())
    }

    /// Copies `bytes` into log `ix`'s chunks, handing each full one to the writer.
    fn put(&mut self, ix: usize, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let tail = self
                .tails
                .get_mut(ix)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such log"))?;
            let n = bytes.len().min(CHUNK - tail.filled);
            tail.chunk.bytes()[tail.filled..tail.filled + n].copy_from_slice(&bytes[..n]);
            tail.filled += n;
            bytes = &bytes[n..];
            if tail.filled == CHUNK {
                let Ok(next) = self.free.recv() else {
                    return Err(self.writer_error());
                };
                let tail = &mut self.tails[ix];
                let chunk = std::mem::replace(&mut tail.chunk, next);
                let write = Write {
                    tail: ix,
                    direct: tail.direct.clone(),
                    buffered: tail.buffered.clone(),
                    offset: tail.start,
                    chunk,
                };
                tail.start += CHUNK as u64;
                tail.filled = 0;
                let sent = self.writes.as_ref().map(|w| w.send(write).is_ok());
                if sent != Some(true) {
                    return Err(self.writer_error());
                }
            }
        }
        Ok(())
    }

    /// The writer thread's error, once it has stopped.
    fn writer_error(&mut self) -> io::Error {
        self.writes = None;
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Err((ix, e)))) => self.context(ix, e),
            Some(Err(_)) => io::Error::other("the log writer thread panicked"),
            _ => io::Error::other("the log writer thread stopped"),
        }
    }

    fn context(&self, ix: usize, e: io::Error) -> io::Error {
        let path = self.tails.get(ix).map(|t| t.path.display().to_string());
        io::Error::new(e.kind(), format!("{}: {e}", path.unwrap_or_default()))
    }

    /// Writes what is left, waits for the writer and syncs every log to disk.
    pub fn finish(mut self) -> io::Result<()> {
        self.writes = None;
        if let Some(writer) = self.writer.take() {
            match writer.join() {
                Ok(Ok(())) => {}
                Ok(Err((ix, e))) => return Err(self.context(ix, e)),
                Err(_) => return Err(io::Error::other("the log writer thread panicked")),
            }
        }
        for tail in &mut self.tails {
            let filled = tail.filled;
            let done = tail
                .buffered
                .write_all_at(&tail.chunk.bytes()[..filled], tail.start)
                .and_then(|()| tail.buffered.sync_all());
            if let Err(e) = done {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{}: {e}", tail.path.display()),
                ));
            }
        }
        Ok(())
    }
}

/// The writer thread: writes each chunk at its offset and hands the buffer back. A direct
/// write the device refuses for its alignment (`EINVAL`) is done through the page cache.
fn write_loop(
    queue: mpsc::Receiver<Write>,
    free: mpsc::SyncSender<Chunk>,
) -> Result<(), (usize, io::Error)> {
    for mut w in queue {
        let bytes = w.chunk.bytes();
        let written = match &w.direct {
            Some(direct) => match direct.write_all_at(bytes, w.offset) {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    w.buffered.write_all_at(bytes, w.offset)
                }
                other => other,
            },
            None => w.buffered.write_all_at(bytes, w.offset),
        };
        if let Err(e) = written {
            return Err((w.tail, e));
        }
        // The sealer may have stopped waiting for buffers; that is its business.
        let _ = free.send(w.chunk);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(seed: u8, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                // Most frames cross a chunk boundary; some are a few bytes.
                let len = (i * 2_654_435_761 + seed as usize * 97) % (3 * CHUNK / 2) + 1;
                (0..len).map(|j| (j as u8) ^ (i as u8) ^ seed).collect()
            })
            .collect()
    }

    #[test]
    fn more_logs_than_buffers_do_not_wait_forever() {
        // One chunk per log is being filled; full chunks need spare ones to move on to.
        let dir = tempfile::tempdir().unwrap();
        let n = BUFFERS + 3;
        let paths: Vec<_> = (0..n)
            .map(|i| dir.path().join(format!("{i}.log")))
            .collect();
        let mut logs: Vec<BlockLog> = paths
            .iter()
            .map(|p| BlockLog::open(p, |_, _| Ok(())).unwrap().0)
            .collect();
        let (done_tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let mut bulk = BulkWriter::new(logs.iter()).unwrap();
            let frame = vec![7u8; CHUNK + 1];
            for (i, log) in logs.iter_mut().enumerate() {
                bulk.append(i, log, &frame).unwrap();
            }
            bulk.finish().unwrap();
            let _ = done_tx.send(());
        });
        done.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the writer stalled");
        for p in &paths {
            let mut frames = 0;
            BlockLog::open(p, |_, f| {
                frames += 1;
                assert_eq!(f.len(), CHUNK + 1);
                Ok(())
            })
            .unwrap();
            assert_eq!(frames, 1);
        }
    }

    #[test]
    fn bulk_appends_read_back_as_block_by_block_appends() {
        let dir = tempfile::tempdir().unwrap();
        let (a_path, b_path) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let (mut a, _) = BlockLog::open(&a_path, |_, _| Ok(())).unwrap();
        let (mut b, _) = BlockLog::open(&b_path, |_, _| Ok(())).unwrap();
        // A log that already holds an unaligned frame, like a genesis block.
        a.append(b"genesis", true).unwrap();
        let (fa, fb) = (frames(1, 9), frames(2, 5));
        let mut bulk = BulkWriter::new([&a, &b]).unwrap();
        for i in 0..fa.len().max(fb.len()) {
            if let Some(f) = fa.get(i) {
                bulk.append(0, &mut a, f).unwrap();
            }
            if let Some(f) = fb.get(i) {
                bulk.append(1, &mut b, f).unwrap();
            }
        }
        bulk.finish().unwrap();
        assert_eq!(a.len(), 1 + fa.len() as u64);
        assert_eq!(a.block(3).unwrap().read().unwrap(), fa[2]);
        // Reopened, both logs hold exactly the frames appended, in order, and a clean end.
        for (path, want) in [
            (&a_path, [vec![b"genesis".to_vec()], fa].concat()),
            (&b_path, fb),
        ] {
            let mut seen = Vec::new();
            let (log, tail) = BlockLog::open(path, |_, f| {
                seen.push(f.to_vec());
                Ok(())
            })
            .unwrap();
            assert_eq!(tail, super::super::Tail::Clean);
            assert_eq!(seen.len(), want.len());
            assert!(seen == want, "frames differ");
            let size = std::fs::metadata(path).unwrap().len();
            assert_eq!(size, log.end);
        }
    }
}
