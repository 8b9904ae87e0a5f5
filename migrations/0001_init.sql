-- qcc-customers schema, version 1. Append-only: never edit once released;
-- add 0002_….sql instead. Table and column names are part of the contract
-- (docs/design.md §5): analysts' queries depend on them.

CREATE TABLE runs (
    run_id       INTEGER PRIMARY KEY,
    started_at   TEXT NOT NULL,               -- ISO-8601 UTC
    finished_at  TEXT,
    status       TEXT NOT NULL,               -- running, finished, stopped, failed
    exit_code    INTEGER,
    input_path   TEXT,
    calls        INTEGER NOT NULL DEFAULT 0,  -- HTTP requests made by this run
    rows_written INTEGER NOT NULL DEFAULT 0,
    summary      TEXT                         -- JSON: the end-of-run summary
);

CREATE TABLE companies (
    search_key    TEXT PRIMARY KEY,           -- the first spelling seen, trimmed
    norm_key      TEXT NOT NULL UNIQUE,       -- trimmed, full-width folded: what de-duplicates
    input_row     TEXT,                       -- JSON object of the input row's columns
    input_line    INTEGER,                    -- line of the input file it came from
    state         TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending','done','no_result','rejected','invalid','deferred','parked')),
    status_code   TEXT,                       -- last vendor code that decided the state, as text
    message       TEXT,                       -- vendor message or local reason
    year_list     TEXT,                       -- JSON array from discovery
    discovered_at TEXT,                       -- when year_list was fetched (start of a fetch cycle)
    fetched_at    TEXT,                       -- when the company last reached done/no_result
    retry_after   TEXT,                       -- parked until
    first_run_id  INTEGER,
    last_run_id   INTEGER,                    -- last run whose input held this key
    updated_at    TEXT NOT NULL
);
CREATE INDEX companies_state ON companies(state);

CREATE TABLE company_years (
    search_key    TEXT NOT NULL REFERENCES companies(search_key),
    year          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('complete','partial','truncated')),
    total_records INTEGER,
    pages_total   INTEGER,                    -- pages this fetch will ask for (≤ 100)
    pages_fetched INTEGER NOT NULL DEFAULT 0, -- checkpoint: pages 1..pages_fetched are stored
    fetched_at    TEXT,
    PRIMARY KEY (search_key, year)
) WITHOUT ROWID;

CREATE TABLE customers (
    search_key         TEXT NOT NULL,
    year               TEXT,                  -- the row's own Year ('2018-06'), else the query year
    query_year         TEXT NOT NULL,
    page_index         INTEGER NOT NULL,
    row_index          INTEGER NOT NULL,      -- 0-based position in the page
    name               TEXT,
    key_no             TEXT,
    image_url          TEXT,
    sales_amount       REAL,                  -- 万元 (10,000 CNY)
    sales_amount_text  TEXT,
    sales_percent      REAL,                  -- percent, without '%'
    sales_percent_text TEXT,
    relationship       TEXT,
    source             TEXT,
    fetched_at         TEXT NOT NULL,
    PRIMARY KEY (search_key, query_year, page_index, row_index)
) WITHOUT ROWID;
-- No index on customers(name): inserts land at random places in it, which
-- made every write several times more expensive. The README shows how to add
-- one for frequent "who buys from X" lookups.

CREATE TABLE api_calls (
    call_id      INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL,
    search_key   TEXT NOT NULL,
    year         TEXT,                        -- NULL for the discovery call
    page_index   INTEGER NOT NULL,
    page_size    INTEGER NOT NULL,
    http_status  INTEGER,                     -- NULL when no HTTP answer came
    status       TEXT,                        -- vendor Status as text
    order_number TEXT,                        -- vendor billing reference
    started_at   TEXT NOT NULL,
    duration_ms  INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,            -- 1 for the first try of this page in this run
    error        TEXT
);
CREATE INDEX api_calls_started ON api_calls(started_at);   -- --daily-limit counts from here

-- Every page answered 200, as received: the receipt for what was paid. A
-- page fetched again (a refresh) adds a row; the newest one per page is what
-- `rebuild` uses. A rowid table: its rows are several KiB of blob.
CREATE TABLE raw_pages (
    raw_id       INTEGER PRIMARY KEY,
    search_key   TEXT NOT NULL,
    query_year   TEXT NOT NULL,               -- '' for the discovery page
    page_index   INTEGER NOT NULL,
    order_number TEXT,
    fetched_at   TEXT NOT NULL,
    body         BLOB NOT NULL                -- the response as received, zlib-compressed
);
CREATE INDEX raw_pages_page ON raw_pages(search_key, query_year, page_index);

-- Each company's customers in its latest year that has any.
CREATE VIEW latest_customers AS
SELECT c.*
FROM customers c
JOIN (SELECT search_key, MAX(query_year) AS query_year FROM customers GROUP BY search_key) l
  ON l.search_key = c.search_key AND l.query_year = c.query_year;

-- One line per company: state, years covered, customers, the largest customer.
CREATE VIEW company_summary AS
SELECT co.search_key,
       co.state,
       co.status_code,
       (SELECT COUNT(DISTINCT query_year) FROM customers cu WHERE cu.search_key = co.search_key) AS years_covered,
       (SELECT MIN(query_year) FROM customers cu WHERE cu.search_key = co.search_key) AS first_year,
       (SELECT MAX(query_year) FROM customers cu WHERE cu.search_key = co.search_key) AS last_year,
       (SELECT COUNT(*) FROM customers cu WHERE cu.search_key = co.search_key) AS customer_rows,
       (SELECT name FROM customers cu WHERE cu.search_key = co.search_key AND cu.sales_amount IS NOT NULL
         ORDER BY cu.query_year DESC, cu.sales_amount DESC LIMIT 1) AS top_customer_latest_year,
       (SELECT sales_percent FROM customers cu WHERE cu.search_key = co.search_key AND cu.sales_amount IS NOT NULL
         ORDER BY cu.query_year DESC, cu.sales_amount DESC LIMIT 1) AS top_customer_percent,
       co.fetched_at
FROM companies co;
