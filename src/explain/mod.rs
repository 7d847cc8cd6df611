//! What the segments and calls mean: one timeline, the states inferred from it, and the story in words.

pub mod infer;
pub mod story;
pub mod timeline;
