//! Benchmark tools for Heft: the dump generator, shared by the `gen-dump` binary and the tests
//! that check its output against the real captures.

pub mod gen;
