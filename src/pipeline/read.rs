//! Reading a supplier file: decompression (with a guard against decompression bombs), SHA-256
//! of the stored bytes, encoding checks, BOM and CRLF handling, and splitting into records
//! (lines of JSON lines, or elements of one JSON array) with a bound on each record's size.
//! Memory use depends on the chunk bounds and the record bound, never on the file's size or
//! shape.

use super::split::{skip_blank, split_array, split_lines, Chunk, ChunkBuilder};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// How the bytes of a file are compressed, chosen from its name and checked against its
/// first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn from_name(name: &str) -> Compression {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".gz") {
            Compression::Gzip
        } else if lower.ends_with(".zst") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// How records are laid out once decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One JSON value per line.
    Lines,
    /// One JSON array whose elements are the records.
    Array,
}

/// True when the name allows one JSON array (`.json`, `.json.gz`, `.json.zst`); every other
/// name is JSON lines, whatever its content.
pub fn may_hold_array(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let base = lower
        .strip_suffix(".gz")
        .or_else(|| lower.strip_suffix(".zst"))
        .unwrap_or(&lower);
    base.ends_with(".json")
}

/// Bounds the reader works within.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest record loaded; a longer one is rejected.
    pub max_record_bytes: usize,
    /// How much of an oversize record is kept for the reject table.
    pub keep_bytes: usize,
    /// A chunk is handed on once it holds this many bytes...
    pub chunk_bytes: usize,
    /// ...or this many records (blank lines and empty elements take no bytes).
    pub chunk_records: usize,
    /// A compressed file may not decompress to more than this many bytes (0: no limit).
    pub max_decompressed_bytes: u64,
    /// Nor to more than this many times its compressed size, once past `RATIO_GRACE` bytes
    /// (0: no limit).
    pub max_expansion_ratio: u64,
}

/// Decompressed bytes below which the expansion ratio is not checked: small files of very
/// repetitive records compress far better than large ones.
pub const RATIO_GRACE: u64 = 64 << 20;

/// A file refused for what it holds (UTF-16 text, a decompression bomb), as opposed to one
/// that could not be read. The ledger records it as `rejected`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Refused {
    fn err(what: impl Into<String>) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, Refused(what.into()))
    }

    /// True when `e` (or what caused it) is a refusal.
    pub fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<Refused>())
    }
}

/// A file that changed while it was read (its writer still had it open and wrote to it):
/// what was read is not the file, and it must be read again, whole.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Changed(pub String);

impl Changed {
    /// True when `e` says the file changed while it was read.
    pub fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<Changed>())
    }
}

/// Size and modification time of an open file (`fstat`), to see whether it changed.
fn fstat(file: &File) -> io::Result<(u64, Option<std::time::SystemTime>)> {
    let m = file.metadata()?;
    Ok((m.len(), m.modified().ok()))
}

/// A file opened for reading, hashing every stored byte as it goes.
pub struct Source {
    decoder: Decoder,
    pub compression: Compression,
    may_hold_array: bool,
    /// Stored bytes read so far, for the expansion guard.
    stored: Arc<AtomicU64>,
}

/// What reading the whole file produced besides records.
#[derive(Debug, Clone)]
pub struct Digest256 {
    pub sha256: String,
    pub size: u64,
    /// The modification time when the file was opened.
    pub modified: Option<std::time::SystemTime>,
}

impl Digest256 {
    /// Checks that the file at `path` (a symlink followed only with `follow_symlinks`, as it
    /// was opened) is still what was read: the same size and modification time. A writer that
    /// kept it open may write after the read ended, while the rows are still being staged.
    pub fn still_matches(&self, path: &Path, follow_symlinks: bool) -> io::Result<()> {
        let m = if follow_symlinks {
            std::fs::metadata(path)?
        } else {
            std::fs::symlink_metadata(path)?
        };
        if m.len() != self.size || m.modified().ok() != self.modified {
            return Err(io::Error::other(Changed(format!(
                "the file changed after it was read (its writer still had it open): {} bytes \
                 read, {} now{}",
                self.size,
                m.len(),
                if m.modified().ok() != self.modified {
                    ", modified since"
                } else {
                    ""
                }
            ))));
        }
        Ok(())
    }
}

struct HashingReader {
    inner: File,
    hasher: Hasher,
    bytes: Arc<AtomicU64>,
    /// Size and modification time when opened: the read is of the file only if they are
    /// the same when it ends and every byte of that size was read.
    opened: (u64, Option<std::time::SystemTime>),
}

/// Where the bytes read are hashed: on the reading thread, or (a large file, cores to spare)
/// on a thread of its own, so that the reader only reads, decompresses and splits.
enum Hasher {
    Inline(Sha256),
    Apart(HashThread),
}

/// Bytes read wait in blocks of this size for the hash thread.
const HASH_BLOCK: usize = 1 << 20;

/// Files from this size up are hashed apart (when there are more than two cores).
const HASH_APART_FROM: u64 = 16 << 20;

struct HashThread {
    /// The block being filled.
    block: Vec<u8>,
    /// Full blocks to the thread (bounded: a slow hash holds the reader back).
    full: Option<crossbeam_channel::Sender<Vec<u8>>>,
    /// Hashed blocks back, to be filled again.
    empty: crossbeam_channel::Receiver<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<Sha256>>,
}

impl HashThread {
    fn start() -> io::Result<HashThread> {
        let (full, blocks) = crossbeam_channel::bounded::<Vec<u8>>(4);
        let (give_back, empty) = crossbeam_channel::bounded::<Vec<u8>>(8);
        let thread = std::thread::Builder::new()
            .name("votewatch-sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for mut block in blocks {
                    hasher.update(&block);
                    block.clear();
                    let _ = give_back.try_send(block);
                }
                hasher
            })?;
        Ok(HashThread {
            block: Vec::with_capacity(HASH_BLOCK),
            full: Some(full),
            empty,
            thread: Some(thread),
        })
    }

    fn update(&mut self, bytes: &[u8]) {
        self.block.extend_from_slice(bytes);
        if self.block.len() >= HASH_BLOCK {
            self.send();
        }
    }

    fn send(&mut self) {
        let next = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(HASH_BLOCK));
        let block = std::mem::replace(&mut self.block, next);
        if let Some(full) = &self.full {
            // The thread only stops when this end is dropped.
            let _ = full.send(block);
        }
    }

    fn finalize(mut self) -> io::Result<Sha256> {
        if !self.block.is_empty() {
            self.send();
        }
        self.full = None;
        self.thread
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| io::Error::other("votewatch's hash thread failed"))
    }
}

impl Drop for HashThread {
    fn drop(&mut self) {
        self.full = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Hasher {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Inline(h) => h.update(bytes),
            Hasher::Apart(t) => t.update(bytes),
        }
    }

    fn finalize(self) -> io::Result<String> {
        let hasher = match self {
            Hasher::Inline(h) => h,
            Hasher::Apart(t) => t.finalize()?,
        };
        Ok(format!("{:x}", hasher.finalize()))
    }
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl HashingReader {
    fn new(inner: File) -> io::Result<Self> {
        let opened = fstat(&inner)?;
        // The core count (read from the cgroup) is asked only for a large file.
        let apart = opened.0 >= HASH_APART_FROM
            && std::thread::available_parallelism().is_ok_and(|n| n.get() > 2);
        HashingReader::with(inner, opened, apart)
    }

    /// With `apart`, the hash runs on a thread of its own. `opened`: the file's `fstat`.
    fn with(
        inner: File,
        opened: (u64, Option<std::time::SystemTime>),
        apart: bool,
    ) -> io::Result<Self> {
        Ok(HashingReader {
            opened,
            inner,
            hasher: match apart {
                true => Hasher::Apart(HashThread::start()?),
                false => Hasher::Inline(Sha256::new()),
            },
            bytes: Arc::default(),
        })
    }

    /// Reads what the decoder left (trailing bytes) so the hash covers the whole file, then
    /// checks (`fstat` again) that the file did not change meanwhile.
    fn finish(mut self) -> io::Result<Digest256> {
        io::copy(&mut self, &mut io::sink())?;
        let now = fstat(&self.inner)?;
        let read = self.bytes.load(Ordering::Relaxed);
        if now != self.opened || read != self.opened.0 {
            return Err(io::Error::other(Changed(format!(
                "the file changed while it was read (its writer still had it open): {} bytes \
                 when opened, {} read, {} now{}",
                self.opened.0,
                read,
                now.0,
                if now.1 != self.opened.1 {
                    ", modified since"
                } else {
                    ""
                }
            ))));
        }
        let size = self.bytes.load(Ordering::Relaxed);
        Ok(Digest256 {
            sha256: self.hasher.finalize()?,
            size,
            modified: self.opened.1,
        })
    }
}

enum Decoder {
    Plain(HashingReader),
    Gzip(Box<flate2::read::MultiGzDecoder<HashingReader>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<HashingReader>>>),
}

impl Read for Decoder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

impl Decoder {
    fn into_hashing(self) -> HashingReader {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(r) => r.into_inner(),
            Decoder::Zstd(r) => r.finish().into_inner(),
        }
    }
}

/// The decoded stream, counting what comes out against the bomb guard.
struct Guarded {
    decoder: Decoder,
    stored: Arc<AtomicU64>,
    decoded: u64,
    max_bytes: u64,
    max_ratio: u64,
}

impl Read for Guarded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.decoder.read(buf)?;
        if matches!(self.decoder, Decoder::Plain(_)) {
            return Ok(n);
        }
        self.decoded += n as u64;
        if self.max_bytes > 0 && self.decoded > self.max_bytes {
            return Err(Refused::err(format!(
                "decompresses to more than {} bytes (ingest.max_decompressed_bytes)",
                self.max_bytes
            )));
        }
        let stored = self.stored.load(Ordering::Relaxed).max(1);
        if self.max_ratio > 0
            && self.decoded > RATIO_GRACE
            && self.decoded / stored > self.max_ratio
        {
            return Err(Refused::err(format!(
                "decompresses to more than {} times its size ({} bytes from the first {} \
                 stored bytes; ingest.max_expansion_ratio): a decompression bomb?",
                self.max_ratio, self.decoded, stored
            )));
        }
        Ok(n)
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

/// A zstd frame, or a skippable frame (magic 0x184D2A50 to 0x184D2A5F, little-endian), which
/// a valid zstd stream may start with.
fn is_zstd(head: &[u8]) -> bool {
    head.starts_with(&ZSTD_MAGIC)
        || (head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18])
}

/// Opens a regular file for reading. Never blocks on a FIFO (the open is non-blocking and
/// anything but a regular file is refused with what it is), and with `follow_symlinks` false
/// refuses a symlink instead of reading its target.
pub fn open_regular(path: &Path, follow_symlinks: bool) -> io::Result<File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if !follow_symlinks {
        flags |= libc::O_NOFOLLOW;
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) && !follow_symlinks => {
            return Err(io::Error::other(
                "not a regular file (a symlink; never followed)",
            ))
        }
        other => other?,
    };
    let ft = file.metadata()?.file_type();
    let what = if ft.is_file() {
        return Ok(file);
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "of an unknown kind"
    };
    Err(io::Error::other(format!("not a regular file ({what})")))
}

/// Hashes a file without parsing it (the daemon's reconcile uses this).
pub fn hash_file(path: &Path) -> io::Result<Digest256> {
    HashingReader::new(open_regular(path, false)?)?.finish()
}

/// Hashes the whole file at `path` (a symlink followed only with `follow_symlinks`), asking
/// `go_on` between blocks of 1 MiB whether to go on (`Interrupted` when not); fails with
/// [`Changed`] when the file changed meanwhile.
pub fn hash_file_with(
    path: &Path,
    follow_symlinks: bool,
    mut go_on: impl FnMut() -> bool,
) -> io::Result<Digest256> {
    let mut r = HashingReader::new(open_regular(path, follow_symlinks)?)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if !go_on() {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "hashing was stopped",
            ));
        }
        if r.read(&mut buf)? == 0 {
            return r.finish();
        }
    }
}

impl Source {
    /// Opens `path`; the compression comes from the name and must match the content. With
    /// `follow_symlinks` false a symlink is refused rather than followed.
    pub fn open(path: &Path, follow_symlinks: bool) -> io::Result<Source> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let compression = Compression::from_name(&name);
        let mut file = open_regular(path, follow_symlinks)?;
        let mut head = Vec::with_capacity(4);
        (&mut file).take(4).read_to_end(&mut head)?;
        file.seek(SeekFrom::Start(0))?;
        let hashing = HashingReader::new(file)?;
        let stored = hashing.bytes.clone();
        let bad = |what: &str| Err(io::Error::new(io::ErrorKind::InvalidData, what.to_string()));
        let decoder = match compression {
            // A 0-byte compressed file is an empty file, like any other.
            _ if head.is_empty() => Decoder::Plain(hashing),
            Compression::None => {
                if head.starts_with(&GZIP_MAGIC) {
                    return bad("looks like gzip data: name it .gz (for example votes.jsonl.gz)");
                }
                if is_zstd(&head) {
                    return bad("looks like zstd data: name it .zst (for example votes.jsonl.zst)");
                }
                Decoder::Plain(hashing)
            }
            Compression::Gzip => {
                if !head.starts_with(&GZIP_MAGIC) {
                    return bad("name ends in .gz but the content is not gzip");
                }
                Decoder::Gzip(Box::new(flate2::read::MultiGzDecoder::new(hashing)))
            }
            Compression::Zstd => {
                if !is_zstd(&head) {
                    return bad("name ends in .zst but the content is not zstd");
                }
                Decoder::Zstd(Box::new(zstd::stream::read::Decoder::new(hashing)?))
            }
        };
        Ok(Source {
            decoder,
            compression,
            may_hold_array: may_hold_array(&name),
            stored,
        })
    }

    /// Checks the encoding (skipping a UTF-8 BOM), finds the layout, then hands every record
    /// to `sink` in chunks; `sink` returns false to stop early. Returns the file's digest once
    /// all of it has been read.
    pub fn read_records(
        self,
        limits: Limits,
        mut sink: impl FnMut(Chunk) -> bool,
    ) -> io::Result<(Layout, Digest256)> {
        let mut guarded = Guarded {
            decoder: self.decoder,
            stored: self.stored,
            decoded: 0,
            max_bytes: limits.max_decompressed_bytes,
            max_ratio: limits.max_expansion_ratio,
        };
        let mut head = Vec::with_capacity(4);
        (&mut guarded).take(4).read_to_end(&mut head)?;
        check_encoding(&head)?;
        if head.starts_with(&BOM) {
            head.drain(..3);
        }
        let mut reader = BufReader::with_capacity(1 << 18, io::Cursor::new(head).chain(guarded));
        let mut b = ChunkBuilder::new(limits, &mut sink);
        let mut layout = Layout::Lines;
        if self.may_hold_array {
            let (newlines, first) = skip_blank(&mut reader)?;
            if first == Some(b'[') {
                layout = Layout::Array;
                b.line += newlines;
            } else {
                for _ in 0..newlines {
                    b.end_line(None);
                    b.line += 1;
                }
            }
        }
        match layout {
            Layout::Lines => split_lines(&mut reader, &mut b)?,
            Layout::Array => split_array(&mut reader, &mut b)?,
        }
        if b.stopped {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "reading was stopped",
            ));
        }
        let (_, guarded) = reader.into_inner().into_inner();
        let digest = guarded.decoder.into_hashing().finish()?;
        Ok((layout, digest))
    }
}

/// Refuses text that is not UTF-8 but would otherwise be read as binary data.
fn check_encoding(head: &[u8]) -> io::Result<()> {
    let utf16 = match head {
        [0xff, 0xfe, ..] => Some("UTF-16 little-endian (byte-order mark FF FE)"),
        [0xfe, 0xff, ..] => Some("UTF-16 big-endian (byte-order mark FE FF)"),
        [a, 0, b, 0, ..] if a.is_ascii() && *a != 0 && b.is_ascii() && *b != 0 => {
            Some("UTF-16 little-endian")
        }
        [0, a, 0, b, ..] if a.is_ascii() && *a != 0 && b.is_ascii() && *b != 0 => {
            Some("UTF-16 big-endian")
        }
        _ => None,
    };
    match utf16 {
        Some(what) => Err(Refused::err(format!(
            "the file is {what} text: convert it to UTF-8"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
