//! Reading and writing point sets: CSV (one point a row) and NumPy `.npy` (2-D, f32 or f64).
