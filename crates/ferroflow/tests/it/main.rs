//! ferroflow's integration tests: one binary, a module per area.

mod data;
mod metrics;
mod model;
mod path;
mod plot;
mod solver;
mod train;
