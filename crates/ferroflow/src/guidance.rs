//! Mode-seeking guidance (in progress).
