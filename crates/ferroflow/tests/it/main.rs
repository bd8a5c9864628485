//! ferroflow's integration tests: one binary, a module per area.

mod coupling;
mod model;
mod train;
