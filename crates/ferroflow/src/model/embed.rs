//! Time embeddings.
/// Placeholder.
pub struct TimeEmbedding;
/// Placeholder.
pub struct TimeEmbeddingConfig;
