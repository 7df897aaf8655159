//! A file's way from bytes to a committed load.
pub mod load;
pub mod read;
pub mod route;
pub mod split;
