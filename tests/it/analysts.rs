//! The analysts' path: the warehouse votewatch wrote, read by the Python duckdb client.
//! `.ci/run` installs duckdb 1.5.x into a venv and points VOTEWATCH_PYTHON at it.

use std::process::Command;

use crate::harness::{test_data, BoundedOutput, Env};

#[test]
fn python_duckdb_reads_the_outlier_view() {
    let env = Env::new();
    let sample = test_data("sample-votes.jsonl");
    assert_eq!(env.ingest(&[sample.to_str().unwrap()]).code, 0);
    let python = crate::harness::needs::python();
    let script = r#"
import sys, duckdb
assert duckdb.__version__.startswith("1.5."), duckdb.__version__
con = duckdb.connect(sys.argv[1], read_only=True)
for row in con.sql('SELECT "Year", "WeekNumber", "VoteCount" FROM blog_analysis.outlier_weeks').fetchall():
    print(*row)
print(con.sql("SELECT count(*) FROM blog_analysis.votes").fetchone()[0])
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(env.warehouse())
        .bounded_output()
        .unwrap_or_else(|e| panic!("cannot run {python} (set VOTEWATCH_PYTHON): {e}"));
    assert!(
        out.status.success(),
        "{python} failed (needs the duckdb 1.5.x package; .ci/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2022 0 1\n2022 1 3\n2022 2 3\n2022 5 1\n2022 6 1\n2022 8 1\n16\n"
    );
}
