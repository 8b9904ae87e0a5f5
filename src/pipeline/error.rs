//! Why a run could not start, or failed outright (a run that stops early is
//! not an error: its summary says why).

use crate::pipeline::intake::input::InputError;
use crate::store::StoreError;

/// Why a run could not start, or failed outright.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("internal error: {0}")]
    Internal(String),
}
