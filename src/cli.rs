//! Command-line types (clap derive) and nothing else: `cmd/` turns these raw
//! flags into validated options before any work starts.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_ENDPOINT: &str = "https://pro.qcc.com/api/yj/Customer/GetList";

#[derive(Debug, Parser)]
#[command(
    name = "qcc-customers",
    version,
    about = "Fetch every company's customers from Qichacha (企查查) Customer/GetList into one SQLite file.",
    long_about = "Fetch every company's customers from Qichacha (企查查) Customer/GetList into one SQLite file.\n\n\
        Reads a list of companies (an Excel workbook or a CSV), pages through the paid API at a polite rate, and stores every customer row \
        with a checkpoint per page, so an interrupted run resumes without paying twice.\n\n\
        Exit codes: 0 all companies final, 64 usage, 65 bad input, 73 database problem or locked, \
        75 stopped early but resumable, 78 credentials or account refused."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Only warnings, errors and the final summary.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline over a company list (workbook or CSV) into a SQLite file. Re-running the same command resumes.
    Run(Box<RunArgs>),
    /// Run the whole pipeline against the built-in simulator on the sample input (no key, no network).
    Demo(DemoArgs),
    /// Serve the built-in Customer/GetList simulator (for trying the tool and for tests).
    MockServer(MockServerArgs),
    /// Show what a database holds: runs, companies by state, what waits and why, calls, rows.
    Status(StatusArgs),
    /// Write the customers (joined with the input's own columns) to an Excel workbook (.xlsx) or a CSV (UTF-8 with BOM).
    Export(ExportArgs),
    /// Re-derive the customer rows from the archived raw pages, without any call.
    Rebuild(RebuildArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout, or write one page per subcommand with --out-dir.
    Man(ManArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Install, e.g.: qcc-customers completions bash > ~/.local/share/bash-completion/completions/qcc-customers \
    (docs/user-guide.md has zsh and fish)."
)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Install, e.g.: qcc-customers man --out-dir ~/.local/share/man/man1 (then: man qcc-customers-run)"
)]
pub struct ManArgs {
    /// Write qcc-customers.1 and qcc-customers-<subcommand>.1 into this directory instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The database to inspect (opened read-only).
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// How many recent runs to list.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// How many waiting (deferred/parked/pending) companies to list.
    #[arg(long, default_value_t = 20)]
    pub waiting: usize,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The database to export from (opened read-only).
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// The file to write: a CSV in UTF-8 with BOM (or - for stdout), or an
    /// Excel workbook when it ends in .xlsx (identifiers such as credit codes
    /// stay text there: Excel keeps only 15 digits of a number it reads from a CSV).
    #[arg(long, value_name = "FILE")]
    pub out: String,
    /// csv or xlsx; by default from --out's extension (.xlsx: xlsx).
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// Only rows of this query year (e.g. 2023).
    #[arg(long)]
    pub year: Option<String>,
    /// Only each company's latest year.
    #[arg(long, conflicts_with = "year")]
    pub latest: bool,
    /// What the file knew at TIME (2026-05-01T08:00:00Z, or a day, 2026-05-01, meaning its start in
    /// Beijing time): the rows as they were then, corrections made since left out. This is when the
    /// file learned them, not when the reports were published.
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    /// Write the changes instead of the rows: every customer added to, changed in or removed from a
    /// company's report period, and every period new to a company, since RUN_ID (the changes of the
    /// runs after it) or since TIME (as --as-of). `status` shows the run ids.
    #[arg(long, value_name = "RUN_ID|TIME", conflicts_with_all = ["as_of", "year", "latest"])]
    pub changes_since: Option<String>,
}

/// What `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Xlsx,
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The database to rebuild (takes the writer lock).
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// First rewrite every receipt against a zstd dictionary trained on a sample of this file's pages, then rebuild.
    #[arg(long)]
    pub recompress: bool,
    /// Then repack the whole file (VACUUM; needs free space of about its size): pages full, free space returned.
    #[arg(long)]
    pub vacuum: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Credentials: QCC_KEY (AppKey) and QCC_SECRET_KEY (SecretKey) from the environment, \
    or the secret from --secret-key-file. The SecretKey is never accepted as a flag.\n\n\
    Cost: a first fetch of a company costs max(1, ceil(TotalRecords / 50)) calls once the tool has learned that \
    the query without year lists every year (and TotalRecords ≤ 5,000), else \
    1 + Σ_years max(1, min(100, ceil(rows_in_year / 50))). It learns this from answers (a whole listing carrying \
    every year of its YearList), never assumes it; `status` shows the evidence. A refresh of an unchanged company \
    costs its one discovery call.\n\n\
    When: by default the revisit schedule asks a company again around the dates its next annual (by 30 April) or \
    half-year report (by 31 August) is expected, as often as the report is likely (from the company's own record) \
    and where its date is likely (a booked date, its own date a year before, the dates seen across companies, \
    the statutory calendar), and never more than --max-staleness apart. A company without data is looked at once \
    after each deadline (--no-result-staleness). --refresh-after D asks every company D after its last fetch \
    instead. `status` and \
    --dry-run show who is due and forecast the checks per week.\n\n\
    Keys: a key is what the file's quoting says it is (\"Apple & Orange Trading Co., Ltd.\" is sent with its comma). \
    A key holding a tab, ; or |, a control character or an undecodable byte, or on a line with more filled cells \
    than the header (an unquoted separator split a name), is stored as invalid and never sent; --dry-run names them.")]
pub struct RunArgs {
    /// The company list: an .xlsx/.xlsm/.xlsb/.xls/.ods workbook, or comma-, tab-, ;- or |-separated text (- for stdin).
    #[arg(long, value_name = "FILE")]
    pub input: String,
    /// SQLite database to create or resume.
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    #[command(flatten)]
    pub fetch: FetchArgs,
    #[command(flatten)]
    pub input_args: InputArgs,
    /// API endpoint (full URL). The open-API plan serves https://api.qichacha.com/Customer/GetList.
    #[arg(long, env = "QCC_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// Allow plain http:// to a non-loopback host (the key and token then travel unencrypted).
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// Read the SecretKey from this file (refused if group/other can read it).
    #[arg(long, value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Read and validate the input, print the plan and the calls it would need; no call, no write, no key needed.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds between progress lines when stderr is not a terminal.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub progress_every: Duration,
    /// After the run (finished, stopped or failed), write its metrics here, atomically, in Prometheus' text format.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

/// Fetch policy shared by `run` and `demo`.
#[derive(Debug, Args, Clone)]
pub struct FetchArgs {
    /// Most calls per second; no one-second window ever holds more (retries included). 0 = unlimited (simulators only).
    #[arg(long, default_value_t = 5.0)]
    pub qps: f64,
    /// Calls allowed back to back before the rate applies.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: u32,
    /// Calls in flight: a number, or auto (enough to sustain --qps at the observed latency).
    #[arg(long, default_value = "auto")]
    pub concurrency: String,
    /// Upper bound for --concurrency auto.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_concurrency: u32,
    /// Rows per page (the API allows at most 50; every page is a paid call).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub page_size: u32,
    /// Only these years (comma-separated, e.g. 2022,2023).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub years: Option<Vec<String>>,
    /// Only years from this one on.
    #[arg(long, value_name = "YEAR")]
    pub since: Option<u32>,
    /// A fixed schedule instead of the revisit schedule: every company is asked again this long after its
    /// last fetch (e.g. 7d, 12h); more recently fetched ones are skipped at no cost. 0s: every company on
    /// every run. At most 36500d.
    #[arg(long, value_parser = parse_duration)]
    pub refresh_after: Option<Duration>,
    /// The revisit schedule's bound: no company goes longer than this without a check (catches corrections
    /// and reports outside the seasons). At least 1d (a nightly run checks a company at most once), at most
    /// 36500d.
    #[arg(long, default_value = "60d", value_parser = parse_duration)]
    pub max_staleness: Duration,
    /// The bound for companies without any data (201): besides one look after each report deadline (about
    /// 2 checks a year), no such company goes longer than this without a check. The default never adds a
    /// check; it costs that a company which starts disclosing between deadlines (a bond prospectus) is found
    /// only after the next deadline. 30d finds it within a month at about 12 checks a year for every such
    /// company. At least 1d, at most 36500d.
    #[arg(long, default_value = "365d", value_parser = parse_duration)]
    pub no_result_staleness: Duration,
    /// An input column with each company's booked publication date (e.g. 预约披露日期, 2026-04-25): the
    /// revisit schedule checks around it.
    #[arg(long, value_name = "NAME")]
    pub expected_date_column: Option<String>,
    /// Re-fetch every year of every company, not just new and recent years.
    #[arg(long)]
    pub full_refresh: bool,
    /// Ask again for companies the API rejected (202, 208, …) in earlier runs.
    #[arg(long)]
    pub retry_rejected: bool,
    /// Retries of a call after transient failures (5xx, timeouts, bad bodies) before the company is deferred.
    #[arg(long, default_value_t = 5)]
    pub max_retries: u32,
    /// Stop (resumably, exit 75) when throttling (120/122/429) lasts longer than this.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub max_throttle_wait: Duration,
    /// Hard budget of calls for this run; stops resumably when reached.
    #[arg(long, value_name = "N")]
    pub max_calls: Option<u64>,
    /// Calls per calendar day (Beijing time), counted across runs from the database.
    #[arg(long, value_name = "N")]
    pub daily_limit: Option<u64>,
    /// Do not keep the raw response of every page in raw_pages.
    #[arg(long)]
    pub no_archive: bool,
    /// Stop dispatching (resumably, exit 75) when the database's filesystem has
    /// less free space than this, checked before the first call and every
    /// second: a run should stop before the disk is full, not after it paid.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub min_free_space: u64,
    /// Request timeout.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Connect timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// First retry backoff ceiling (doubles per retry, full jitter).
    #[arg(long, default_value = "1s", value_parser = parse_duration, hide = true)]
    pub retry_base: Duration,
    /// How long 110 parks a company (the vendor says 2 hours).
    #[arg(long, default_value = crate::pipeline::control::parking::DEFAULT_WAIT, value_parser = parse_duration, hide = true)]
    pub park_for: Duration,
    /// First throttle pause ceiling (doubles per consecutive throttle).
    #[arg(long, default_value = "2s", value_parser = parse_duration, hide = true)]
    pub throttle_base: Duration,
}

#[derive(Debug, Args, Clone, Default)]
pub struct InputArgs {
    /// The column holding the search key (header name; a 1-based number with --no-header).
    #[arg(long)]
    pub column: Option<String>,
    /// The list has no header row.
    #[arg(long)]
    pub no_header: bool,
    /// Text encoding (utf-8, gbk, gb18030, utf-16le, utf-16be); detected when not given.
    #[arg(long)]
    pub encoding: Option<String>,
    /// Separator of a text list: , tab ; | (or any one ASCII character); detected when not given, tab for .tsv.
    #[arg(long, value_name = "SEP", value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,
    /// Sheet of a workbook (.xlsx, .xlsm, .xlsb, .xls, .ods) to read; the first when not given.
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,
}

/// `--delimiter`: one ASCII character, or a name for the invisible one.
fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        "comma" => Ok(b','),
        "semicolon" => Ok(b';'),
        "pipe" => Ok(b'|'),
        _ => match s.as_bytes() {
            [b] if b.is_ascii() && !b.is_ascii_alphanumeric() && *b != b'"' && *b != b'\n' && *b != b'\r' => Ok(*b),
            _ => Err(format!(
                "{s:?} is not a separator: give one of , tab ; | (or one other ASCII punctuation character)"
            )),
        },
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the demo database.
    #[arg(long, default_value = "demo.sqlite")]
    pub db: PathBuf,
    /// Calls per second against the simulator.
    #[arg(long, default_value_t = 50.0)]
    pub qps: f64,
    /// Also write the run's metrics here, as `run --metrics-file` does (Prometheus' text format).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MockServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Seed of the deterministic data.
    #[arg(long, default_value_t = 2019)]
    pub seed: u64,
    /// AppKey to accept (this is a simulator: its secret is not a real one).
    #[arg(long, default_value = crate::simulator::DEMO_KEY)]
    pub key: String,
    /// SecretKey to accept.
    #[arg(long, default_value = crate::simulator::DEMO_SECRET)]
    pub secret: String,
    /// Share of requests answered 120 (0.0–1.0).
    #[arg(long, default_value_t = 0.0)]
    pub throttle_share: f64,
    /// Share answered with an HTTP 500 page.
    #[arg(long, default_value_t = 0.0)]
    pub http500_share: f64,
    /// Share answered with an HTTP 502 page.
    #[arg(long, default_value_t = 0.0)]
    pub http502_share: f64,
    /// Share of connections dropped mid-answer.
    #[arg(long, default_value_t = 0.0)]
    pub drop_share: f64,
    /// Share answered with a truncated body.
    #[arg(long, default_value_t = 0.0)]
    pub truncate_share: f64,
    /// Extra latency per request, e.g. 300-900 (milliseconds).
    #[arg(long, value_name = "MIN-MAX")]
    pub latency_ms: Option<String>,
    /// Answer everything with 120 between these seconds after start, e.g. 10-20.
    #[arg(long, value_name = "FROM-TO")]
    pub storm: Option<String>,
    /// Answer 120 above this many requests in one second.
    #[arg(long)]
    pub qps_cap: Option<u32>,
    /// Answer 116 once this many billable requests have been served.
    #[arg(long)]
    pub daily_quota: Option<u64>,
    /// What a query without `year` lists: every year's rows (as in the vendor's
    /// example), only the latest year's, or the latest year's rows with every
    /// year's TotalRecords (pages that do not add up).
    #[arg(long, value_enum, default_value_t = SimListing::EveryYear)]
    pub listing: SimListing,
    /// The simulated data: `paging` (0–8 years, up to hundreds of customers a
    /// year) or `annual` (3–11 years, mostly five customers a year, like
    /// annual-report disclosures).
    #[arg(long, value_enum, default_value_t = SimProfile::Paging)]
    pub profile: SimProfile,
    /// Publish each report period on a calendar (annual reports by 30 April, half-year ones by 31 August, a
    /// vendor delay, rare corrections) and answer as of the system clock.
    #[arg(long)]
    pub timeline: bool,
    /// With the timeline, answer as of this moment instead (2026-04-25 or an RFC 3339 time); implies --timeline.
    #[arg(long, value_name = "WHEN")]
    pub as_of: Option<String>,
}

/// `mock-server --listing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimListing {
    EveryYear,
    LatestYear,
    LatestRowsAllTotal,
}

/// `mock-server --profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimProfile {
    Paging,
    Annual,
}

/// `256MiB`, `1GiB`, `500MB`, `64k`, or plain bytes (K/M/G mean KiB/MiB/GiB).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{s:?} is not a size (e.g. 256MiB, 1GiB, 500MB)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use KiB, MiB, GiB, KB, MB, GB)")),
    };
    Ok((n * scale as f64) as u64)
}

/// `7d`, `12h`, `30m`, `45s`, `250ms`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{s:?} is not a duration (e.g. 7d, 12h, 30m, 45s, 250ms)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        "w" => n * 7.0 * 86400.0,
        other => return Err(format!("unknown unit {other:?} in {s:?} (use ms, s, m, h, d or w)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?} is not a duration"));
    }
    if secs > MAX_DURATION_SECS {
        return Err(format!("{s:?} is longer than a century: no schedule means that (at most 36500d)"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a duration"))
}

/// The longest duration a flag takes: a hundred years. Longer has no
/// meaning for a nightly tool, and dates that far out leave the calendar.
pub const MAX_DURATION_SECS: f64 = 36_500.0 * 86_400.0;

/// `300-900` → (300, 900).
pub fn parse_range(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s.split_once('-').ok_or_else(|| format!("{s:?} is not a range like 300-900"))?;
    let a: f64 = a.trim().parse().map_err(|_| format!("{s:?} is not a range like 300-900"))?;
    let b: f64 = b.trim().parse().map_err(|_| format!("{s:?} is not a range like 300-900"))?;
    if a > b || a < 0.0 {
        return Err(format!("{s:?}: the range must go from low to high"));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("7 parsecs").is_err());
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        // Nonsense is refused at the door, never a panic.
        assert!(parse_duration("1e30s").is_err());
        assert!(parse_duration("99999999999999999999999d").is_err());
        assert!(parse_duration("36501d").is_err());
        assert!(parse_duration("36500d").is_ok());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
