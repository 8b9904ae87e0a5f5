//! Process exit codes (sysexits, SPEC §2), so cron wrappers can act on them.

/// Every company reached a final state.
pub const OK: i32 = 0;
/// Usage error.
pub const USAGE: i32 = 64;
/// Input file unreadable or no usable column.
pub const DATAERR: i32 = 65;
/// The database cannot be created/opened/written, or another run holds it.
pub const CANTCREAT: i32 = 73;
/// Stopped early but resumable.
pub const TEMPFAIL: i32 = 75;
/// Credentials missing, or the API refused the account.
pub const CONFIG: i32 = 78;
