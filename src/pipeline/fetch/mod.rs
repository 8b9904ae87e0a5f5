//! Fetch: the calls. [`dispatch`] runs one company per worker slot;
//! [`worker`] goes through a company's cycle (discovery, then the listing or
//! its years); [`pages`] asks a unit's pages side by side within the
//! company's [`lanes`], keeping what arrived in a [`paging`] state; every
//! request goes through the [`call`] (one call with its retries), and every
//! answer leaves through the shared [`context`] to the writer.
//!
//! ```text
//!  dispatch ──▶ worker ──▶ pages ──▶ context::Ctx.caller (call) ──▶ qcc::Client
//!                  │          │
//!                  └──────────┴──▶ context (hand-off, company endings) ──▶ writer
//! ```
//!
//! The arrows go one way: `call` knows nothing of the context; the context
//! owns a [`call::Caller`] and knows nothing of pages or workers.

pub mod call;
pub mod context;
pub mod dispatch;
pub mod handoff;
pub mod lanes;
pub mod pages;
pub mod paging;
#[cfg(test)]
pub(crate) mod testing;
pub mod worker;
