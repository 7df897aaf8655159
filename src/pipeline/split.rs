//! Splitting decoded bytes into records: JSON lines, or the elements of one JSON array, in
//! chunks of whole records bounded in bytes and in count, each record with its position, line
//! and (in an array) element. A record over the length bound keeps only its first bytes; a
//! structural error of the file (an array not closed) is a record of its own, flagged.

use std::io::{self, BufRead};

use super::read::Limits;

/// A run of records that fits in one buffer.
#[derive(Debug, Default)]
pub struct Chunk {
    pub data: Vec<u8>,
    pub records: Vec<Record>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub start: usize,
    pub end: usize,
    /// 0-based position of the record in the file: the order in which records came, unique
    /// within a file (a compact JSON array has all its elements on line 1).
    pub pos: u64,
    /// 1-based line on which the record starts.
    pub line: u64,
    /// 0-based element index within a JSON array; `None` for JSON lines.
    pub element: Option<u64>,
    /// Set when the record was longer than the bound: its full size. `data[start..end]` then
    /// holds only its first bytes.
    pub oversize: Option<u64>,
    /// Set when the record stands for a structural error of the file (an array not closed,
    /// text after it) rather than for bytes of the file: the reason. Never derived from data.
    pub structure: Option<&'static str>,
}

/// Skips leading whitespace of any length without keeping it. Returns how many line ends it
/// held and the first byte after it (not consumed), or `None` at the end of the file.
pub(crate) fn skip_blank(reader: &mut impl BufRead) -> io::Result<(u64, Option<u8>)> {
    let mut newlines = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((newlines, None));
        }
        let blank = buf
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(buf.len());
        newlines += memchr::memchr_iter(b'\n', &buf[..blank]).count() as u64;
        let first = buf.get(blank).copied();
        reader.consume(blank);
        if first.is_some() {
            return Ok((newlines, first));
        }
    }
}

/// Builds chunks of records and hands them on when full.
pub(crate) struct ChunkBuilder<'s, S: FnMut(Chunk) -> bool> {
    pub(crate) chunk: Chunk,
    pub(crate) limits: Limits,
    pub(crate) sink: &'s mut S,
    /// Start of the record being built, in `chunk.data`.
    pub(crate) start: usize,
    /// Full length of the record being built (may exceed what is kept).
    pub(crate) len: u64,
    /// The last byte of the record being built, to drop a CR before a line end.
    pub(crate) last: Option<u8>,
    /// Position of the next record in the file.
    pub(crate) pos: u64,
    pub(crate) line: u64,
    pub(crate) stopped: bool,
}

impl<'s, S: FnMut(Chunk) -> bool> ChunkBuilder<'s, S> {
    pub(crate) fn new(limits: Limits, sink: &'s mut S) -> Self {
        ChunkBuilder {
            chunk: Self::empty_chunk(&limits),
            limits,
            sink,
            start: 0,
            len: 0,
            last: None,
            pos: 0,
            line: 1,
            stopped: false,
        }
    }

    pub(crate) fn empty_chunk(limits: &Limits) -> Chunk {
        Chunk {
            data: Vec::with_capacity(limits.chunk_bytes + 4096),
            records: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let Some(&last) = bytes.last() else {
            return;
        };
        self.last = Some(last);
        // One byte of slack: a line of exactly the bound followed by CR LF still fits.
        let max = self.limits.max_record_bytes as u64 + 1;
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

    /// Ends a line of JSON lines: a CR before the line end is not part of the record.
    pub(crate) fn end_line(&mut self, element: Option<u64>) {
        if self.len > 0 && self.last == Some(b'\r') {
            self.len -= 1;
            if self.chunk.data.len() as u64 - self.start as u64 > self.len {
                self.chunk.data.pop();
            }
        }
        self.end(element, None);
    }

    pub(crate) fn end(&mut self, element: Option<u64>, structure: Option<&'static str>) {
        let oversize = (self.len > self.limits.max_record_bytes as u64).then_some(self.len);
        if oversize.is_some() {
            let keep_end = self.start + self.limits.keep_bytes;
            self.chunk.data.truncate(keep_end);
        }
        let end = self.chunk.data.len();
        self.chunk.records.push(Record {
            start: self.start,
            end,
            pos: self.pos,
            line: self.line,
            element,
            oversize,
            structure,
        });
        self.pos += 1;
        self.start = end;
        self.len = 0;
        self.last = None;
        if self.chunk.data.len() >= self.limits.chunk_bytes
            || self.chunk.records.len() >= self.limits.chunk_records
        {
            self.flush();
        }
    }

    pub(crate) fn flush(&mut self) {
        if self.chunk.records.is_empty() || self.stopped {
            return;
        }
        let full = std::mem::replace(&mut self.chunk, Self::empty_chunk(&self.limits));
        self.start = 0;
        if !(self.sink)(full) {
            self.stopped = true;
        }
    }
}

pub(crate) fn split_lines<S: FnMut(Chunk) -> bool>(
    reader: &mut impl BufRead,
    b: &mut ChunkBuilder<'_, S>,
) -> io::Result<()> {
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
                    b.end_line(None);
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
            if b.stopped {
                return Ok(());
            }
        }
        reader.consume(n);
    }
    if open {
        b.end_line(None);
    }
    b.flush();
    Ok(())
}

/// Splits one top-level JSON array into its elements at top-level commas. Elements are not
/// parsed here; a malformed element ends up in one record and is rejected by the parser. An
/// empty element (`[a,,b]`, `[a,]`) is a record of its own, rejected as such.
pub(crate) fn split_array<S: FnMut(Chunk) -> bool>(
    reader: &mut impl BufRead,
    b: &mut ChunkBuilder<'_, S>,
) -> io::Result<()> {
    #[derive(PartialEq)]
    enum State {
        BeforeArray,
        BeforeElement,
        InElement,
        AfterArray,
    }
    let mut state = State::BeforeArray;
    let mut depth = 0u32;
    let mut in_string = false;
    let mut escaped = false;
    let mut element = 0u64;
    let mut element_line = 1u64;
    let mut after_comma = false;
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
                        if after_comma {
                            // `[a,]`: the comma promised an element that never came.
                            let saved = b.line;
                            b.end(Some(element), None);
                            b.line = saved;
                            element += 1;
                        }
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
                    b.end(Some(element), None);
                    b.line = saved;
                    element += 1;
                    after_comma = c == b',';
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
            return Ok(());
        }
    }
    if state == State::InElement {
        // The array was cut off: hand the partial element to the parser, which rejects it.
        b.line = element_line;
        b.end(Some(element), None);
    }
    if state == State::BeforeElement || state == State::InElement {
        b.end(Some(element), Some("the JSON array is not closed with ]"));
    }
    if let Some(line) = trailing_line {
        b.line = line;
        b.end(
            Some(element),
            Some("unexpected text after the closing ] of the array"),
        );
    }
    b.flush();
    Ok(())
}

pub(crate) fn trim_end(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..end]
}
