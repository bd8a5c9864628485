//! Integration tests of the explorer.

mod api;
mod browser;
