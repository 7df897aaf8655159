//! Integration tests: the real executable in a temporary folder, a real DuckDB file.

mod analysts;
mod check;
mod commands;
mod console;
mod contract;
mod daemon;
mod docs;
mod exactly_once;
mod harness;
mod hostile;
mod inputs;
mod lake;
mod mail;
mod posts;
mod rebuild;
mod smtp;
mod unload;
mod webhook;
mod weekly;
mod worked_example;
