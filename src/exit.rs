//! Process exit codes (sysexits), so cron wrappers can act on them; the
//! README's "Exit codes" table says when each is used.

/// Every company reached a final state.
pub const OK: i32 = 0;
/// Usage error.
pub const USAGE: i32 = 64;
/// Input file unreadable or no usable column.
pub const DATAERR: i32 = 65;
/// The database cannot be created/opened/written, or another run holds it.
pub const CANTCREAT: i32 = 73;
/// An internal error (a bug): the message says what happened.
pub const SOFTWARE: i32 = 70;
/// Stopped early but resumable.
pub const TEMPFAIL: i32 = 75;
/// Credentials missing, or the API refused the account.
pub const CONFIG: i32 = 78;
