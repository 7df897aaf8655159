//! Unit tests of reading and splitting: bounds, layouts, encodings, compression, bombs.

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

fn apart_or_not(path: &Path, apart: bool) -> HashingReader {
    let file = File::open(path).unwrap();
    let opened = fstat(&file).unwrap();
    HashingReader::with(file, opened, apart).unwrap()
}

/// The hash computed on a thread of its own is the hash computed inline, for a file of several
/// blocks and a partial last one, however the reads are cut; a reader dropped before the end
/// stops its thread.
#[test]
fn hashing_apart_gives_the_inline_digest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    let body: Vec<u8> = (0..(3 * HASH_BLOCK + 12_345))
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    std::fs::write(&path, &body).unwrap();
    let digest = |apart: bool, cut: usize| {
        let mut r = apart_or_not(&path, apart);
        let mut buf = vec![0u8; cut];
        while r.read(&mut buf).unwrap() > 0 {}
        r.finish().unwrap()
    };
    let inline = digest(false, 1 << 16);
    use sha2::Digest as _;
    assert_eq!(inline.sha256, format!("{:x}", Sha256::digest(&body)));
    for cut in [1000, 1 << 16, HASH_BLOCK + 1] {
        let apart = digest(true, cut);
        assert_eq!(
            (apart.sha256.as_str(), apart.size),
            (inline.sha256.as_str(), inline.size)
        );
    }
    // A reader dropped before the end stops its thread (nothing waits forever).
    let mut r = apart_or_not(&path, true);
    let mut buf = vec![0u8; HASH_BLOCK * 2];
    r.read_exact(&mut buf).unwrap();
    drop(r);
}
