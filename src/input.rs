//! Reading a supplier file: decompression, SHA-256 of the stored bytes, BOM and CRLF handling,
//! and splitting into records (lines of JSON lines, or elements of one JSON array) with a
//! bound on each record's size. Memory use depends on the chunk size and the record bound,
//! never on the file size.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

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

/// A run of records that fits in one buffer. `no` is the 1-based line number for JSON lines
/// and the 0-based element index for a JSON array.
#[derive(Debug, Default)]
pub struct Chunk {
    pub data: Vec<u8>,
    pub records: Vec<Record>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub start: usize,
    pub end: usize,
    /// 1-based line on which the record starts.
    pub line: u64,
    /// 0-based element index within a JSON array; `None` for JSON lines.
    pub element: Option<u64>,
    /// Set when the record was longer than the bound: its full size. `data[start..end]` then
    /// holds only its first bytes.
    pub oversize: Option<u64>,
}

/// Bounds the reader works within.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest record loaded; a longer one is rejected.
    pub max_record_bytes: usize,
    /// How much of an oversize record is kept for the reject table.
    pub keep_bytes: usize,
    /// A chunk is handed on once it holds this many bytes.
    pub chunk_bytes: usize,
}

/// A file opened for reading, hashing every stored byte as it goes.
pub struct Source {
    decoder: Decoder,
    pub compression: Compression,
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
    bytes: u64,
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

impl HashingReader {
    /// Reads what the decoder left (trailing bytes) so the hash covers the whole file.
    fn finish(mut self) -> io::Result<Digest256> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(Digest256 {
            sha256: format!("{:x}", self.hasher.finalize()),
            size: self.bytes,
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

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

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
    let file = open_regular(path, false)?;
    HashingReader {
        inner: file,
        hasher: Sha256::new(),
        bytes: 0,
    }
    .finish()
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
        let n = head.len();
        file.seek(SeekFrom::Start(0))?;
        let hashing = HashingReader {
            inner: file,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let bad = |what: &str| Err(io::Error::new(io::ErrorKind::InvalidData, what.to_string()));
        let decoder = match compression {
            Compression::None => Decoder::Plain(hashing),
            Compression::Gzip => {
                if n > 0 && !head[..n].starts_with(&GZIP_MAGIC) {
                    return bad("name ends in .gz but the content is not gzip");
                }
                Decoder::Gzip(Box::new(flate2::read::MultiGzDecoder::new(hashing)))
            }
            Compression::Zstd => {
                if n > 0 && !head[..n].starts_with(&ZSTD_MAGIC) {
                    return bad("name ends in .zst but the content is not zstd");
                }
                Decoder::Zstd(Box::new(zstd::stream::read::Decoder::new(hashing)?))
            }
        };
        Ok(Source {
            decoder,
            compression,
        })
    }

    /// Finds the layout (skipping a BOM), then hands every record to `sink` in chunks; `sink`
    /// returns false to stop early. Returns the file's digest once all of it has been read.
    pub fn read_records(
        mut self,
        limits: Limits,
        mut sink: impl FnMut(Chunk) -> bool,
    ) -> io::Result<(Layout, Digest256)> {
        let (prefix, layout) = sniff(&mut self.decoder)?;
        let mut reader =
            BufReader::with_capacity(1 << 18, io::Cursor::new(prefix).chain(self.decoder));
        let finished = match layout {
            Layout::Lines => split_lines(&mut reader, limits, &mut sink)?,
            Layout::Array => split_array(&mut reader, limits, &mut sink)?,
        };
        if !finished {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "reading was stopped",
            ));
        }
        let (_, decoder) = reader.into_inner().into_inner();
        let digest = decoder.into_hashing().finish()?;
        Ok((layout, digest))
    }
}

/// Reads the start of the decoded stream: drops a UTF-8 BOM and looks at the first
/// non-blank byte to tell a JSON array from JSON lines. Returns the bytes read (less the BOM)
/// so that they are split like the rest.
fn sniff(decoder: &mut Decoder) -> io::Result<(Vec<u8>, Layout)> {
    const LOOK: usize = 64 * 1024;
    let mut prefix = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = loop {
            match decoder.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        prefix.extend_from_slice(&buf[..n]);
        let body = prefix.strip_prefix(&BOM[..]).unwrap_or(&prefix);
        if let Some(&c) = body.iter().find(|b| !b.is_ascii_whitespace()) {
            let layout = if c == b'[' {
                Layout::Array
            } else {
                Layout::Lines
            };
            return Ok((strip_bom(prefix), layout));
        }
        if n == 0 || prefix.len() >= LOOK {
            return Ok((strip_bom(prefix), Layout::Lines));
        }
    }
}

fn strip_bom(mut prefix: Vec<u8>) -> Vec<u8> {
    if prefix.starts_with(&BOM) {
        prefix.drain(..3);
    }
    prefix
}

/// Builds chunks of records and hands them on when full.
struct ChunkBuilder<'s, S: FnMut(Chunk) -> bool> {
    chunk: Chunk,
    limits: Limits,
    sink: &'s mut S,
    /// Start of the record being built, in `chunk.data`.
    start: usize,
    /// Full length of the record being built (may exceed what is kept).
    len: u64,
    line: u64,
    stopped: bool,
}

impl<'s, S: FnMut(Chunk) -> bool> ChunkBuilder<'s, S> {
    fn new(limits: Limits, sink: &'s mut S) -> Self {
        ChunkBuilder {
            chunk: Chunk {
                data: Vec::with_capacity(limits.chunk_bytes + 4096),
                records: Vec::new(),
            },
            limits,
            sink,
            start: 0,
            len: 0,
            line: 1,
            stopped: false,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let max = self.limits.max_record_bytes as u64;
        let new_len = self.len + bytes.len() as u64;
        if new_len <= max {
            self.chunk.data.extend_from_slice(bytes);
        } else {
            // Over the bound: keep only the first `keep_bytes` of the record.
            let keep_end = self.start + self.limits.keep_bytes;
            self.chunk.data.truncate(keep_end);
            let room = keep_end
                .saturating_sub(self.chunk.data.len())
                .min(bytes.len());
            self.chunk.data.extend_from_slice(&bytes[..room]);
        }
        self.len = new_len;
    }

    fn end(&mut self, element: Option<u64>, trim_cr: bool) {
        let oversize = (self.len > self.limits.max_record_bytes as u64).then_some(self.len);
        let mut end = self.chunk.data.len();
        if trim_cr && oversize.is_none() && end > self.start && self.chunk.data[end - 1] == b'\r' {
            end -= 1;
        }
        self.chunk.records.push(Record {
            start: self.start,
            end,
            line: self.line,
            element,
            oversize,
        });
        self.chunk.data.truncate(end);
        self.start = end;
        self.len = 0;
        if self.chunk.data.len() >= self.limits.chunk_bytes {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.chunk.records.is_empty() || self.stopped {
            return;
        }
        let full = std::mem::replace(
            &mut self.chunk,
            Chunk {
                data: Vec::with_capacity(self.limits.chunk_bytes + 4096),
                records: Vec::new(),
            },
        );
        self.start = 0;
        if !(self.sink)(full) {
            self.stopped = true;
        }
    }
}

fn split_lines(
    reader: &mut impl BufRead,
    limits: Limits,
    sink: &mut impl FnMut(Chunk) -> bool,
) -> io::Result<bool> {
    let mut b = ChunkBuilder::new(limits, sink);
    let mut open = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        let mut pos = 0;
        while pos < n {
            match memchr::memchr(b'\n', &buf[pos..]) {
                Some(i) => {
                    b.push(&buf[pos..pos + i]);
                    b.end(None, true);
                    b.line += 1;
                    open = false;
                    pos += i + 1;
                }
                None => {
                    b.push(&buf[pos..]);
                    open = true;
                    pos = n;
                }
            }
        }
        reader.consume(n);
        if b.stopped {
            return Ok(false);
        }
    }
    if open {
        b.end(None, true);
    }
    b.flush();
    Ok(!b.stopped)
}

/// Splits one top-level JSON array into its elements at top-level commas. Elements are not
/// parsed here; a malformed element ends up in one record and is rejected by the parser.
fn split_array(
    reader: &mut impl BufRead,
    limits: Limits,
    sink: &mut impl FnMut(Chunk) -> bool,
) -> io::Result<bool> {
    #[derive(PartialEq)]
    enum State {
        BeforeArray,
        BeforeElement,
        InElement,
        AfterArray,
    }
    let mut b = ChunkBuilder::new(limits, sink);
    let mut state = State::BeforeArray;
    let mut depth = 0u32;
    let mut in_string = false;
    let mut escaped = false;
    let mut element = 0u64;
    let mut element_line = 1u64;
    let mut trailing_line = None;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        let mut run_start = 0;
        for (i, &c) in buf.iter().enumerate() {
            match state {
                State::BeforeArray => {
                    if c == b'[' {
                        state = State::BeforeElement;
                    }
                }
                State::BeforeElement => {
                    if c == b']' {
                        state = State::AfterArray;
                    } else if !c.is_ascii_whitespace() {
                        state = State::InElement;
                        element_line = b.line;
                        run_start = i;
                        depth = 0;
                        in_string = false;
                        escaped = false;
                    }
                }
                State::AfterArray => {
                    if !c.is_ascii_whitespace() && trailing_line.is_none() {
                        trailing_line = Some(b.line);
                    }
                }
                State::InElement => {}
            }
            if state == State::InElement {
                let mut ends = false;
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if c == b'\\' {
                        escaped = true;
                    } else if c == b'"' {
                        in_string = false;
                    }
                } else {
                    match c {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' if depth > 0 => depth -= 1,
                        b',' | b']' if depth == 0 => ends = true,
                        _ => {}
                    }
                }
                if ends {
                    b.push(trim_end(&buf[run_start..i]));
                    let saved = b.line;
                    b.line = element_line;
                    b.end(Some(element), false);
                    b.line = saved;
                    element += 1;
                    state = if c == b']' {
                        State::AfterArray
                    } else {
                        State::BeforeElement
                    };
                }
            }
            if c == b'\n' {
                b.line += 1;
            }
        }
        if state == State::InElement {
            b.push(&buf[run_start..]);
        }
        reader.consume(n);
        if b.stopped {
            return Ok(false);
        }
    }
    if state == State::InElement {
        // The array was cut off: hand the partial element to the parser, which rejects it.
        b.line = element_line;
        b.end(Some(element), false);
    }
    if state == State::BeforeElement || state == State::InElement {
        note_structure_error(&mut b, element, "the JSON array is not closed with ]");
    }
    if let Some(line) = trailing_line {
        b.line = line;
        note_structure_error(
            &mut b,
            element,
            "unexpected text after the closing ] of the array",
        );
    }
    b.flush();
    Ok(!b.stopped)
}

/// Adds a record whose text is a description of a structural problem, so that it is rejected
/// with that reason and counted like any other bad record.
fn note_structure_error<S: FnMut(Chunk) -> bool>(
    b: &mut ChunkBuilder<'_, S>,
    element: u64,
    what: &str,
) {
    b.chunk.data.extend_from_slice(STRUCTURE_MARK);
    b.chunk.data.extend_from_slice(what.as_bytes());
    b.end(Some(element), false);
}

/// Prefix of a synthetic record that describes a structural error of the file; it cannot
/// start real JSON, so the parser recognises it.
pub const STRUCTURE_MARK: &[u8] = b"\x00votewatch-structure:";

fn trim_end(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_record_bytes: 16,
            keep_bytes: 4,
            chunk_bytes: 8,
        }
    }

    /// (text, line, element, oversize) of each record.
    type Seen = (String, u64, Option<u64>, Option<u64>);

    fn records(layout_input: &[u8], limits: Limits) -> (Layout, Vec<Seen>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        std::fs::write(&path, layout_input).unwrap();
        let mut out = Vec::new();
        let (layout, digest) = Source::open(&path, false)
            .unwrap()
            .read_records(limits, |chunk| {
                for r in &chunk.records {
                    out.push((
                        String::from_utf8_lossy(&chunk.data[r.start..r.end]).into_owned(),
                        r.line,
                        r.element,
                        r.oversize,
                    ));
                }
                true
            })
            .unwrap();
        assert_eq!(digest.size, layout_input.len() as u64);
        assert_eq!(digest.sha256, format!("{:x}", Sha256::digest(layout_input)));
        (layout, out)
    }

    #[test]
    fn lines_with_crlf_bom_blank_and_no_final_newline() {
        let (layout, recs) = records(b"\xef\xbb\xbf{\"a\":1}\r\n\r\n{\"b\":2}", limits());
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
        let (_, recs) = records(b"0123456789abcdefXYZ\nok\n", limits());
        assert_eq!(
            recs,
            vec![
                ("0123".into(), 1, None, Some(19)),
                ("ok".into(), 2, None, None)
            ]
        );
    }

    #[test]
    fn array_elements_with_lines_and_indexes() {
        let input = b"[\n {\"a\":\"x,]\"},\n {\"b\":[1,2]}\n]\n";
        let (layout, recs) = records(
            input,
            Limits {
                max_record_bytes: 100,
                ..limits()
            },
        );
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
    fn an_oversize_array_element_keeps_only_a_prefix_and_the_next_one_is_whole() {
        let input = b"[{\"a\":\"0123456789abcdefghij\"},{\"b\":1}]";
        let (_, recs) = records(input, limits());
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
        let (_, recs) = records(
            b"[{\"a\":1},{\"b\"",
            Limits {
                max_record_bytes: 100,
                ..limits()
            },
        );
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].0, "{\"b\"");
        assert!(recs[2].0.ends_with("the JSON array is not closed with ]"));
    }

    #[test]
    fn a_chunk_boundary_does_not_split_records() {
        let input: Vec<u8> = (0..1000)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect();
        let (_, recs) = records(
            &input,
            Limits {
                max_record_bytes: 100,
                keep_bytes: 10,
                chunk_bytes: 7,
            },
        );
        assert_eq!(recs.len(), 1000);
        assert_eq!(recs[999].0, "{\"n\":999}");
        assert_eq!(recs[999].1, 1000);
    }
}
