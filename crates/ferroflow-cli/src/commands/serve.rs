//! `ferroflow serve`: the library runs the server; this only passes the flags on.

use anyhow::Result;

use crate::args::ServeArgs;

pub fn run(a: ServeArgs) -> Result<()> {
    ferroflow_serve::serve(ferroflow_serve::ServeOptions { port: a.port, ckpt: a.ckpt })?;
    Ok(())
}
