//! Objectives: the conditional flow matching loss and time samplers.
