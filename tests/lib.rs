//! Cross-tool pipeline tests live in `pipeline.rs`; this crate has no code of its own.
