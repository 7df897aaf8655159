//! The documents' runnable blocks (fenced as `sh runnable`), run as written against the built
//! binary in a temporary folder holding what a clone has (the shipped configuration, the
//! sample): a block that no longer works fails here, so the README and the operator's guide
//! cannot go stale.

use std::path::Path;

use crate::harness::{bin, needs, BoundedOutput, Env};
use crate::smtp::{free_port, SmtpServer};

/// The `sh runnable` blocks of a document of this repository, in order.
fn runnable_blocks(doc: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc)).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh runnable") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap().join("\n")),
            (Some(lines), l) => lines.push(l),
            _ => {}
        }
    }
    assert!(!blocks.is_empty(), "{doc} has no runnable block");
    blocks
}

/// A folder laid out like a clone after `cargo build --release`: the shipped configuration,
/// the sample, and the binary at target/release/votewatch (and on PATH).
fn clone_like() -> Env {
    let env = Env::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    env.write(
        "config/votewatch.toml",
        std::fs::read(root.join("config/votewatch.toml")).unwrap(),
    );
    env.write(
        "tests/data/sample-votes.jsonl",
        std::fs::read(root.join("tests/data/sample-votes.jsonl")).unwrap(),
    );
    std::fs::create_dir_all(env.path("target/release")).unwrap();
    std::os::unix::fs::symlink(
        std::fs::canonicalize(bin()).unwrap(),
        env.path("target/release/votewatch"),
    )
    .unwrap();
    env
}

/// Runs `block` with bash in `env` (`set -e`; `cargo` does nothing, the binary is built;
/// `python3` is the analysts' client's), then stops anything it left running. Returns stdout.
fn run_block(env: &Env, block: &str, vars: &[(&str, String)]) -> String {
    let script = format!(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n\
         cargo() {{ :; }}\npython3() {{ {} \"$@\"; }}\n{block}\n",
        needs::python()
    );
    let path = format!(
        "{}:{}",
        env.path("target/release").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(&script)
        .current_dir(env.dir.path())
        .env("PATH", path)
        .env_remove("VOTEWATCH_CONFIG")
        .env("VOTEWATCH_LOG", "warn");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.bounded_output().expect("run the block");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the block failed:\n{block}\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_readme_tour_runs_as_written() {
    let env = clone_like();
    let blocks = runnable_blocks("README.md");
    let out = run_block(&env, &blocks[0], &[]);
    for seen in [
        "sample-votes.jsonl",
        "loaded",
        "16",
        "Subject: votewatch: sample-votes.jsonl",
        "ok",
    ] {
        assert!(out.contains(seen), "the tour did not show {seen:?}:\n{out}");
    }
    // The outlier weeks the README's table gives.
    let table: Vec<(String, String, String)> =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap()
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
                (cells.len() == 3 && cells[0] == "2022")
                    .then(|| (cells[0].into(), cells[1].into(), cells[2].into()))
            })
            .collect();
    assert_eq!(table.len(), 6, "the README's outlier table");
    for (year, week, votes) in table {
        let row = out.lines().any(|l| {
            let cells: Vec<&str> = l.split('│').map(str::trim).collect();
            cells.len() >= 4 && cells[1] == year && cells[2] == week && cells[3] == votes
        });
        assert!(
            row,
            "the tour's outlier weeks lack {year} {week} {votes}:\n{out}"
        );
    }
}

#[test]
fn the_operators_smtp_block_delivers() {
    let env = clone_like();
    let server = SmtpServer::start(free_port(), None);
    let blocks = runnable_blocks("docs/operating.md");
    let out = run_block(&env, &blocks[0], &[("SMTP_PORT", server.port.to_string())]);
    let got = server.received();
    assert_eq!(got.len(), 2, "a test message and the report: {out}");
    let report = String::from_utf8_lossy(&got[1].data).into_owned();
    assert!(report.contains("sample-votes.jsonl"), "{report}");
    assert_eq!(got[1].to, ["data-team@localhost"]);
}

/// The documents this repository ships: README.md and docs/*.md, by name.
fn documents() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![(
        "README.md".to_string(),
        std::fs::read_to_string(root.join("README.md")).unwrap(),
    )];
    let mut guides: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    guides.sort();
    for p in guides {
        let name = format!("docs/{}", p.file_name().unwrap().to_string_lossy());
        docs.push((name, std::fs::read_to_string(&p).unwrap()));
    }
    docs
}

/// The figure blocks of a document: (set name, the block's text), and the document with
/// them taken out.
fn figure_blocks(doc: &str) -> (Vec<(String, String)>, String) {
    let mut blocks = Vec::new();
    let mut rest = String::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("<!-- figures: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            rest.push_str(line);
            rest.push('\n');
            continue;
        };
        assert_eq!(lines.next(), Some("```text"), "block {name}");
        let mut body = String::new();
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        assert_eq!(lines.next(), Some("<!-- /figures -->"), "block {name}");
        blocks.push((name.to_string(), body));
    }
    (blocks, rest)
}

/// Figures come from one place: every figure block of the README and the guides is, byte
/// for byte, the benchmark output `scripts/bench-figures` wrote to docs/figures/NAME.txt;
/// every such file is a real run's output (the command, then the date and machine); the
/// README states the load's distance from its limit from that output; and outside the blocks
/// no document types a rate or a speed ratio by hand.
#[test]
fn figures_in_the_documents_are_the_benchmark_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut shown = std::collections::BTreeSet::new();
    for (name, doc) in documents() {
        let (blocks, rest) = figure_blocks(&doc);
        for (set, body) in blocks {
            let file = root.join(format!("docs/figures/{set}.txt"));
            let figures = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{name}: block {set}: {}: {e}", file.display()));
            assert_eq!(
                body, figures,
                "{name}: block {set} differs from docs/figures/{set}.txt: run scripts/bench-figures --splice-only"
            );
            shown.insert(set);
        }
        for line in rest.lines() {
            let typed = ["rows/s", "files/s", "ratio, bare", "speedup"]
                .iter()
                .find(|w| line.contains(*w) && line.chars().any(|c| c.is_ascii_digit()));
            assert!(
                typed.is_none(),
                "{name}: a figure typed by hand ({typed:?}); show it from docs/figures: {line}"
            );
        }
        if name == "README.md" {
            assert!(
                doc.contains("<!-- figures: load-10m -->"),
                "the README shows the load's figures"
            );
        }
    }
    for entry in std::fs::read_dir(root.join("docs/figures")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let command = lines.next().unwrap_or_default();
        assert!(
            command.starts_with("$ votewatch-bench ") || command.starts_with("$ cargo build "),
            "{}: {command}",
            path.display()
        );
        let when = lines.next().unwrap_or_default();
        assert!(
            when.starts_with("# 20") && when.contains("cores"),
            "{}: {when}",
            path.display()
        );
        let set = path.file_stem().unwrap().to_string_lossy().to_string();
        assert!(
            shown.contains(&set),
            "docs/figures/{set}.txt is shown nowhere"
        );
    }
    let load = std::fs::read_to_string(root.join("docs/figures/load-10m.txt")).unwrap();
    for label in ["ratio, bare", "limit, no DuckDB", "load / limit", "cores 2"] {
        assert!(load.contains(label), "load-10m.txt has no '{label}' line");
    }
}
