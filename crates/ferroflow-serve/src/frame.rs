//! The binary WebSocket frames that carry point sets to the page.
//!
//! # Layout (all little-endian)
//! | bytes | type | field |
//! |---|---|---|
//! | 0..4 | u32 | magic `0x3157_4646` (the bytes `FFW1`) |
//! | 4..8 | u32 | kind: 1 particles (a trajectory), 2 the data layer |
//! | 8..12 | u32 | n: points per state |
//! | 12..16 | u32 | k: states (times) |
//! | 16..24 | u32 × 2 | the training step, low word then high word |
//! | 24..28 | u32 | the session's generation (bumped when training restarts) |
//! | 28..32 | u32 | NFE of the solve (0 for data) |
//! | 32.. | f32 × k | the times t₀ = 0 … t_{k−1} = 1 |
//! | then | f32 × k·n·2 | the states, state-major: x of point i at state s is at index (s·n + i)·2, y next |

/// `FFW1` read as a little-endian u32.
pub const MAGIC: u32 = 0x3157_4646;
/// Bytes before the times.
pub const HEADER_BYTES: usize = 32;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum FrameKind {
    /// Particle trajectories.
    Particles = 1,
    /// The data layer (one state).
    Data = 2,
}

/// Encodes a frame (see the module doc).
///
/// # Shapes
/// `times: [k]`, `states: [k, n, 2]` flattened.
///
/// ```
/// use ferroflow_serve::frame::{FrameKind, encode, HEADER_BYTES};
/// let f = encode(FrameKind::Data, 3, 0, 5, &[1.0], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 0);
/// assert_eq!(f.len(), HEADER_BYTES + 4 + 6 * 4);
/// assert_eq!(&f[0..4], b"FFW1");
/// assert_eq!(u32::from_le_bytes(f[8..12].try_into().unwrap()), 3);
/// assert_eq!(f32::from_le_bytes(f[HEADER_BYTES + 4 * 3..][..4].try_into().unwrap()), 2.0);
/// ```
pub fn encode(
    kind: FrameKind,
    n: usize,
    step: u64,
    generation: u64,
    times: &[f32],
    states: &[f32],
    nfe: usize,
) -> Vec<u8> {
    debug_assert_eq!(states.len(), times.len() * n * 2);
    let mut out = Vec::with_capacity(HEADER_BYTES + 4 * (times.len() + states.len()));
    for w in [
        MAGIC,
        kind as u32,
        n as u32,
        times.len() as u32,
        step as u32,
        (step >> 32) as u32,
        generation as u32,
        nfe as u32,
    ] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for v in times.iter().chain(states) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}
