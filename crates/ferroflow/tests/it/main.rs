//! ferroflow's integration tests: one binary, a module per area.

mod coupling;
mod data;
mod digits;
mod engine;
mod metrics;
mod mnist;
mod model;
mod path;
mod plot;
mod solver;
mod train;
mod unet;
