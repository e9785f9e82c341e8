//! End to end.
#![allow(missing_docs)]
