//! lunar-fuzz: the cargo-fuzz targets' shared code. The entry points themselves live in the
//! test suite (`tests/src/entry_points.rs`, where proptest drives them too) and are compiled
//! here as they are, so both run exactly the same checks.

#[path = "../../tests/src/entry_points.rs"]
pub mod entry_points;
