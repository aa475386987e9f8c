//! The browser-like client and the raw-socket clients, from the test kit.

pub use testkit::client::{Client, Resp};
pub use testkit::raw::{raw_bytes, raw_request, RawResp};
