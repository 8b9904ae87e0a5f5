//! One module per subcommand. Each turns raw flags into validated options,
//! runs, and returns how it [`Ended`](crate::exit::Ended); an error says how
//! it ends the command (see [`crate::exit`]), and `main` prints it once and
//! exits with the status `exit` decides.

pub mod demo;
pub mod export;
pub mod mock_server;
pub mod rebuild;
pub mod run;
pub mod shell;
pub mod status;
pub mod xlsx;

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
