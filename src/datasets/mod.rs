//! The datasets votewatch loads, one module each: its data contract (fields, types, rules,
//! the parsers), its Arrow columns and its table. Pure: no I/O, no DuckDB.
pub mod votes;
