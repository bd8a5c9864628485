//! ferroflow's integration tests: one binary, a module per area.

mod model;
mod solver;
mod train;
