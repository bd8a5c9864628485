//! One module per command; each parses nothing and computes nothing itself beyond calling the
//! library and reporting.

mod bench;
mod classifier;
mod common;
pub mod digits;
mod eval;
mod nll;
mod plot;
mod sample;
mod serve;
mod train;

use anyhow::Result;

use crate::args::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Plot(a) => plot::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Nll(a) => nll::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Classifier(a) => classifier::run(a),
    }
}
