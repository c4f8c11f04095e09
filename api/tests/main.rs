//! Tests of the API crate, all peer-to-peer (no bus, no root):
//! the generated adapters against the interface XML, the typed dictionaries, the transaction
//! client, and the generator's `shapes` sample compiled and served.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod conformance;
mod dicts;
mod props;
mod shapes;
mod transaction;
