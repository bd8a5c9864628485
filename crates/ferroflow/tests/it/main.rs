//! ferroflow's integration tests: one binary, a module per area.

mod model;
mod path;
mod plot;
mod solver;
mod train;
