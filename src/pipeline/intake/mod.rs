//! Intake: what comes in. [`input`] reads the user's list (CSV, TSV or a
//! workbook, sniffed from its bytes) as search keys; [`feed`] checks each key
//! against the store's checkpoints and hands the companies due to the
//! dispatcher as [`Job`](crate::pipeline::plan::Job)s.
//!
//! Intake never calls the API; it talks to the writer only to register
//! companies, over the writer's channel.

pub mod feed;
pub mod input;
