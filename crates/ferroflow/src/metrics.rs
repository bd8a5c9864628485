//! Metrics: exact W2, MMD, straightness of trajectories.
