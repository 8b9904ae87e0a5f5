//! The upstream API, Qichacha `Customer/GetList` (docs/design.md §1): request signing
//! ([`sign`]), the wire format and its defensive parser ([`wire`]), the
//! status-code table ([`codes`]) and the HTTP client ([`client`]).
//!
//! Nothing here knows about SQLite or the pipeline; the simulator reuses the
//! signing and the code table so both sides agree by construction.

pub mod client;
pub mod codes;
pub mod sign;
pub mod wire;

pub use client::{CallOutcome, Client, ClientConfig, Credentials, PageRequest};
pub use codes::{classify, Action};
pub use wire::{ClientRow, Response, WireError};
