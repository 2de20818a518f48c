//! Support for the end-to-end tests (the tests themselves are in `e2e/`).

pub mod fuzz;
