//! (being written: see engine/src/inspect/mod.rs)
