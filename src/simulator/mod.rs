//! The built-in stand-in for Qichacha's `Customer/GetList` (docs/design.md §6).
//!
//! A first-class part of the crate: `demo` runs against it in-process, the
//! tests do the same on `127.0.0.1:0`, and `qcc-customers mock-server` serves
//! it standalone. [`data`] decides what every search key holds; [`server`]
//! speaks the wire protocol, checks signatures and counts what it served.

mod answer;
pub mod config;
pub mod data;
pub mod server;
mod state;
pub mod timeline;

pub use config::{Faults, Listing, SimConfig};
pub use data::{Pictures, Profile};
pub use server::Simulator;
pub use state::{Arrival, ServedKey, SimHandle, SimState};
pub use timeline::{Correction, Timeline};

/// The AppKey the simulator accepts unless told otherwise (used by `demo`).
pub const DEMO_KEY: &str = "demo-app-key";
/// The SecretKey paired with [`DEMO_KEY`].
pub const DEMO_SECRET: &str = "demo-secret-key";
