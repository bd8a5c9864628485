//! Pictures: scatter plots, trajectories, flow animations.
