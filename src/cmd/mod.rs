//! One module per subcommand. Each turns raw flags into validated options,
//! runs, and returns the process exit code; errors carry their exit code in
//! an [`Exit`] so `main` can print them once and pick the code.

pub mod demo;
pub mod export;
pub mod mock_server;
pub mod rebuild;
pub mod run;
pub mod status;
pub mod xlsx;

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

/// What a user sees for an error: the error, then each cause its message
/// does not already say (an error that quotes its source would otherwise
/// repeat it).
pub fn error_report(e: &anyhow::Error) -> String {
    let mut said = e.to_string();
    let mut out = format!("error: {said}\n");
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if said.contains(&text) {
            continue;
        }
        out.push_str(&format!("  caused by: {text}\n"));
        said.push_str(&text);
    }
    out
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

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_that_quotes_its_cause_does_not_repeat_it() {
        let io = std::io::Error::other("database or disk is full");
        let e = crate::store::StoreError::Open { db: "d.sqlite".into(), source: Box::new(io) };
        let report = super::error_report(&anyhow::Error::new(e).context("the run could not complete"));
        assert_eq!(report.matches("database or disk is full").count(), 1, "{report}");
        assert!(report.contains("cannot open database d.sqlite"), "{report}");
    }
}
