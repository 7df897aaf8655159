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
}

struct HashingReader {
    inner: File,
    hasher: Sha256,
    bytes: Arc<AtomicU64>,
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
    fn new(inner: File) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: Arc::default(),
        }
    }

    /// Reads what the decoder left (trailing bytes) so the hash covers the whole file.
    fn finish(mut self) -> io::Result<Digest256> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(Digest256 {
            sha256: format!("{:x}", self.hasher.finalize()),
            size: self.bytes.load(Ordering::Relaxed),
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
    HashingReader::new(open_regular(path, false)?).finish()
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
        let hashing = HashingReader::new(file);
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
mod tests {
    use super::*;
    use crate::pipeline::split::*;

    fn limits() -> Limits {
        Limits {
            max_record_bytes: 16,
            keep_bytes: 4,
            chunk_bytes: 8,
            chunk_records: 1000,
            max_decompressed_bytes: 0,
            max_expansion_ratio: 0,
        }
    }

    fn roomy() -> Limits {
        Limits {
            max_record_bytes: 100,
            ..limits()
        }
    }

    /// (text, line, element, oversize) of each record.
    type Seen = (String, u64, Option<u64>, Option<u64>);

    fn read_file(
        name: &str,
        input: &[u8],
        limits: Limits,
    ) -> io::Result<(Layout, Vec<Record>, Vec<Seen>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, input).unwrap();
        let mut out = Vec::new();
        let mut all = Vec::new();
        let (layout, digest) = Source::open(&path, false)?.read_records(limits, |chunk| {
            for r in &chunk.records {
                out.push((
                    String::from_utf8_lossy(&chunk.data[r.start..r.end]).into_owned(),
                    r.line,
                    r.element,
                    r.oversize,
                ));
                all.push(r.clone());
            }
            true
        })?;
        assert_eq!(digest.size, input.len() as u64);
        assert_eq!(digest.sha256, format!("{:x}", Sha256::digest(input)));
        Ok((layout, all, out))
    }

    fn records(name: &str, input: &[u8], limits: Limits) -> (Layout, Vec<Seen>) {
        let (layout, _, seen) = read_file(name, input, limits).unwrap();
        (layout, seen)
    }

    #[test]
    fn lines_with_crlf_bom_blank_and_no_final_newline() {
        let (layout, recs) = records(
            "f.jsonl",
            b"\xef\xbb\xbf{\"a\":1}\r\n\r\n{\"b\":2}",
            limits(),
        );
        assert_eq!(layout, Layout::Lines);
        assert_eq!(
            recs,
            vec![
                ("{\"a\":1}".into(), 1, None, None),
                ("".into(), 2, None, None),
                ("{\"b\":2}".into(), 3, None, None),
            ]
        );
    }

    #[test]
    fn an_overlong_line_keeps_only_a_prefix() {
        let (_, recs) = records("f.jsonl", b"0123456789abcdefXYZ\nok\n", limits());
        assert_eq!(
            recs,
            vec![
                ("0123".into(), 1, None, Some(19)),
                ("ok".into(), 2, None, None)
            ]
        );
    }

    #[test]
    fn the_cr_of_a_crlf_line_end_does_not_count_towards_the_bound() {
        // 16 bytes is exactly the bound: with CR LF it still fits, 17 does not.
        let (_, recs) = records(
            "f.jsonl",
            b"0123456789abcdef\r\n0123456789abcdefg\r\n",
            limits(),
        );
        assert_eq!(
            recs,
            vec![
                ("0123456789abcdef".into(), 1, None, None),
                ("0123".into(), 2, None, Some(17)),
            ]
        );
        // The same with the CR LF split over two reads of the file is covered by the
        // chunk-boundary test; a lone CR inside a line still counts.
        let (_, recs) = records("f.jsonl", b"0123456789abcde\rX\n", limits());
        assert_eq!(recs[0].3, Some(17));
    }

    #[test]
    fn array_elements_with_lines_and_indexes() {
        let input = b"[\n {\"a\":\"x,]\"},\n {\"b\":[1,2]}\n]\n";
        let (layout, recs) = records("f.json", input, roomy());
        assert_eq!(layout, Layout::Array);
        assert_eq!(
            recs,
            vec![
                ("{\"a\":\"x,]\"}".into(), 2, Some(0), None),
                ("{\"b\":[1,2]}".into(), 3, Some(1), None),
            ]
        );
    }

    #[test]
    fn positions_are_unique_and_in_file_order_even_on_one_line() {
        let (_, all, _) = read_file("f.json", b"[{\"a\":1},{\"a\":2},{\"a\":3}]", roomy()).unwrap();
        let pos: Vec<(u64, u64)> = all.iter().map(|r| (r.pos, r.line)).collect();
        assert_eq!(pos, vec![(0, 1), (1, 1), (2, 1)]);
    }

    #[test]
    fn a_trailing_comma_is_an_empty_element_like_a_double_comma() {
        let (_, recs) = records("f.json", b"[{\"a\":1},]", roomy());
        assert_eq!(
            recs,
            vec![
                ("{\"a\":1}".into(), 1, Some(0), None),
                ("".into(), 1, Some(1), None),
            ]
        );
        let (_, recs) = records("f.json", b"[{\"a\":1},,{\"b\":2}]", roomy());
        assert_eq!(recs[1], ("".into(), 1, Some(1), None));
        assert_eq!(recs.len(), 3);
        // An empty array is no element at all.
        let (_, recs) = records("f.json", b"[ ]", roomy());
        assert!(recs.is_empty());
    }

    #[test]
    fn an_oversize_array_element_keeps_only_a_prefix_and_the_next_one_is_whole() {
        let input = b"[{\"a\":\"0123456789abcdefghij\"},{\"b\":1}]";
        let (_, recs) = records("f.json", input, limits());
        assert_eq!(
            recs,
            vec![
                ("{\"a\"".into(), 1, Some(0), Some(28)),
                ("{\"b\":1}".into(), 1, Some(1), None),
            ]
        );
    }

    #[test]
    fn a_truncated_array_yields_its_partial_element_and_a_structure_error() {
        let (_, all, recs) = read_file("f.json", b"[{\"a\":1},{\"b\"", roomy()).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].0, "{\"b\"");
        assert_eq!(
            all[2].structure,
            Some("the JSON array is not closed with ]")
        );
        assert_eq!(all[0].structure, None);
    }

    /// The bytes of a file never make a structure error: only the splitter does.
    #[test]
    fn data_cannot_pose_as_a_structure_error() {
        let forged = b"\x00votewatch-structure:all is well\n[\"\\u0000votewatch-structure:x\"]";
        let (_, all, _) = read_file("f.jsonl", forged, roomy()).unwrap();
        assert!(all.iter().all(|r| r.structure.is_none()));
        let (_, all, _) =
            read_file("f.json", b"[\"\x00votewatch-structure:fine\", 1]", roomy()).unwrap();
        assert!(all.iter().all(|r| r.structure.is_none()));
    }

    #[test]
    fn the_name_decides_whether_a_file_may_be_an_array() {
        // A .jsonl file whose first line is an array is JSON lines: the line is one record.
        let (layout, recs) = records("f.jsonl", b"[1,2]\n{\"a\":1}\n", roomy());
        assert_eq!(layout, Layout::Lines);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].0, "[1,2]");
        // A .json array after far more blank lines than any look-ahead window.
        let mut input = vec![b'\n'; 200_000];
        input.extend_from_slice(b"  [{\"a\":1}]");
        let (layout, recs) = records("f.json.gz", &gzip(&input), roomy());
        assert_eq!(layout, Layout::Array);
        assert_eq!(recs, vec![("{\"a\":1}".into(), 200_001, Some(0), None)]);
        // A .json file of JSON lines keeps its blank lines as blank records.
        let (layout, recs) = records("f.json", b"\n\n{\"a\":1}\n", roomy());
        assert_eq!(layout, Layout::Lines);
        assert_eq!(
            recs,
            vec![
                ("".into(), 1, None, None),
                ("".into(), 2, None, None),
                ("{\"a\":1}".into(), 3, None, None),
            ]
        );
        assert!(may_hold_array("X.JSON.ZST"));
        assert!(!may_hold_array("x.ndjson"));
        assert!(!may_hold_array("x.json.txt"));
    }

    /// Records that take no bytes (blank lines, empty elements) still fill chunks.
    #[test]
    fn chunks_are_bounded_by_record_count_as_well_as_bytes() {
        for (name, input) in [
            ("f.jsonl", b"\n".repeat(10_000)),
            ("g.jsonl", b"\r\n".repeat(10_000)),
            ("h.json", [&b"["[..], &b",".repeat(10_000), b"]"].concat()),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(name);
            std::fs::write(&path, &input).unwrap();
            let mut sizes = Vec::new();
            Source::open(&path, false)
                .unwrap()
                .read_records(
                    Limits {
                        chunk_records: 100,
                        ..limits()
                    },
                    |chunk| {
                        sizes.push(chunk.records.len());
                        true
                    },
                )
                .unwrap();
            assert!(sizes.iter().all(|&n| n <= 100), "{name}: {sizes:?}");
            assert!(sizes.iter().sum::<usize>() >= 10_000, "{name}");
        }
    }

    #[test]
    fn a_chunk_boundary_does_not_split_records() {
        let input: Vec<u8> = (0..1000)
            .flat_map(|i| format!("{{\"n\":{i}}}\r\n").into_bytes())
            .collect();
        let (_, recs) = records(
            "f.jsonl",
            &input,
            Limits {
                max_record_bytes: 100,
                keep_bytes: 10,
                chunk_bytes: 7,
                ..limits()
            },
        );
        assert_eq!(recs.len(), 1000);
        assert_eq!(recs[999].0, "{\"n\":999}");
        assert_eq!(recs[999].1, 1000);
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_zstd_stream_may_start_with_a_skippable_frame() {
        let mut input = vec![0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, b'a', b'b', b'c'];
        input.extend(zstd::encode_all(&b"{\"a\":1}\n"[..], 3).unwrap());
        let (_, recs) = records("f.jsonl.zst", &input, roomy());
        assert_eq!(recs, vec![("{\"a\":1}".into(), 1, None, None)]);
    }

    #[test]
    fn an_empty_compressed_file_is_an_empty_file() {
        for name in ["f.jsonl.gz", "f.json.zst"] {
            let (_, recs) = records(name, b"", roomy());
            assert!(recs.is_empty(), "{name}");
        }
    }

    fn open_error(name: &str, input: &[u8]) -> io::Error {
        read_file(name, input, roomy()).map(|_| ()).unwrap_err()
    }

    #[test]
    fn compressed_data_under_a_plain_name_says_how_to_name_it() {
        let e = open_error("f.jsonl", &gzip(b"{}\n"));
        assert!(
            e.to_string().contains("looks like gzip data: name it .gz"),
            "{e}"
        );
        let e = open_error("f.json", &zstd::encode_all(&b"{}"[..], 3).unwrap());
        assert!(e.to_string().contains("name it .zst"), "{e}");
        assert!(!Refused::is(&e));
    }

    #[test]
    fn utf16_is_refused_with_what_to_do() {
        let le: Vec<u8> = "{\"Id\":1}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let be: Vec<u8> = "{\"Id\":1}"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        for (input, want) in [
            (
                [&[0xff, 0xfe][..], &le].concat(),
                "UTF-16 little-endian (byte-order mark FF FE)",
            ),
            (le.clone(), "UTF-16 little-endian text"),
            (be, "UTF-16 big-endian text"),
        ] {
            let e = open_error("f.jsonl", &input);
            assert!(Refused::is(&e), "{e}");
            assert!(e.to_string().contains(want), "{e}");
            assert!(e.to_string().contains("convert it to UTF-8"), "{e}");
        }
    }

    #[test]
    fn a_decompression_bomb_is_refused_by_size_and_by_ratio() {
        // 2,000 gzip members of 1 MiB of newlines each: about 2 MB stored, 2 GiB decoded.
        let member = gzip(&vec![b'\n'; 1 << 20]);
        let bomb = member.repeat(2000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.jsonl.gz");
        std::fs::write(&path, &bomb).unwrap();
        let read = |limits: Limits| {
            Source::open(&path, false)
                .unwrap()
                .read_records(limits, |_| true)
                .map(|_| ())
                .unwrap_err()
        };
        let e = read(Limits {
            max_expansion_ratio: 100,
            chunk_records: 10_000,
            ..roomy()
        });
        assert!(Refused::is(&e), "{e}");
        assert!(e.to_string().contains("decompression bomb"), "{e}");
        let e = read(Limits {
            max_decompressed_bytes: 10 << 20,
            chunk_records: 10_000,
            ..roomy()
        });
        assert!(Refused::is(&e), "{e}");
        assert!(e.to_string().contains("more than 10485760 bytes"), "{e}");
    }
}
