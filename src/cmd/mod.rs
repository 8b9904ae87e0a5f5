//! One module per subcommand. Each turns raw flags into validated options,
//! runs, and returns the process exit code; errors carry their exit code in
//! an [`Exit`] so `main` can print them once and pick the code.

pub mod demo;
pub mod export;
pub mod mock_server;
pub mod rebuild;
pub mod run;
pub mod status;

/// An error with the exit code it should produce.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

impl Exit {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// The exit code an error should produce (docs/design.md §2), found along its chain.
pub fn exit_code_of(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Exit>() {
            return e.code;
        }
        if let Some(e) = cause.downcast_ref::<crate::pipeline::RunError>() {
            return e.exit_code();
        }
        if cause.downcast_ref::<crate::store::StoreError>().is_some() {
            return crate::exit::CANTCREAT;
        }
        if cause.downcast_ref::<crate::pipeline::input::InputError>().is_some() {
            return crate::exit::DATAERR;
        }
    }
    crate::exit::SOFTWARE
}
