//! Exports the executables' symbols (DuckDB's among them) to shared objects they load. The
//! DuckLake, postgres and parquet extensions are shared objects built against DuckDB 1.5.5;
//! with the host's DuckDB symbols visible they bind to the DuckDB votewatch runs (the pinned,
//! bundled 1.5.5) instead of a private copy of their own.
fn main() {
    println!("cargo:rustc-link-arg=-Wl,--export-dynamic");
    println!("cargo:rerun-if-changed=build.rs");
}
