-- Version 4: the all-years listing (the query without `year`).
--
-- * A stored row's identity is the query that brought it: rows of the
--   listing carry `from_listing = 1` with the listing's page and position;
--   `query_year` stays the report year the row belongs to (the year of its
--   own `Year`, '2018' for '2018-06'), so analysts' queries and the views
--   read both kinds alike.
-- * `company_listings` is the listing's checkpoint per company, like
--   `company_years` is each year's; `company_years.source` says which query
--   a year's rows came from.
-- * `listing_evidence` records what answers showed about what the listing
--   covers; the plan follows it.

-- The views name `customers`: drop them while the table is rebuilt.
DROP VIEW latest_customers;
DROP VIEW company_summary;

CREATE TABLE customers_v4 (
    search_key         TEXT NOT NULL,
    year               TEXT,                  -- the row's own Year ('2018-06'), else the query year
    query_year         TEXT NOT NULL,         -- the report year the row belongs to
    from_listing       INTEGER NOT NULL DEFAULT 0, -- 1: brought by the query without `year`
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
    PRIMARY KEY (search_key, query_year, from_listing, page_index, row_index)
) WITHOUT ROWID;
INSERT INTO customers_v4 (search_key, year, query_year, from_listing, page_index, row_index, name, key_no, image_url,
                          sales_amount, sales_amount_text, sales_percent, sales_percent_text, relationship, source,
                          fetched_at)
SELECT search_key, year, query_year, 0, page_index, row_index, name, key_no, image_url,
       sales_amount, sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at
FROM customers;
DROP TABLE customers;
ALTER TABLE customers_v4 RENAME TO customers;

CREATE TABLE customers_staging_v4 (
    search_key         TEXT NOT NULL,
    year               TEXT,
    query_year         TEXT NOT NULL,
    from_listing       INTEGER NOT NULL DEFAULT 0,
    page_index         INTEGER NOT NULL,
    row_index          INTEGER NOT NULL,
    name               TEXT,
    key_no             TEXT,
    image_url          TEXT,
    sales_amount       REAL,
    sales_amount_text  TEXT,
    sales_percent      REAL,
    sales_percent_text TEXT,
    relationship       TEXT,
    source             TEXT,
    fetched_at         TEXT NOT NULL,
    PRIMARY KEY (search_key, query_year, from_listing, page_index, row_index)
) WITHOUT ROWID;
INSERT INTO customers_staging_v4 (search_key, year, query_year, from_listing, page_index, row_index, name, key_no,
                                  image_url, sales_amount, sales_amount_text, sales_percent, sales_percent_text,
                                  relationship, source, fetched_at)
SELECT search_key, year, query_year, 0, page_index, row_index, name, key_no, image_url,
       sales_amount, sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at
FROM customers_staging;
DROP TABLE customers_staging;
ALTER TABLE customers_staging_v4 RENAME TO customers_staging;

-- The views, unchanged.
CREATE VIEW latest_customers AS
SELECT c.*
FROM customers c
JOIN (SELECT search_key, MAX(query_year) AS query_year FROM customers GROUP BY search_key) l
  ON l.search_key = c.search_key AND l.query_year = c.query_year;

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

-- Which query a year's rows came from: 'year' (paged with `year=Y`) or
-- 'listing' (the company's whole listing, which covered this year).
ALTER TABLE company_years ADD COLUMN source TEXT NOT NULL DEFAULT 'year' CHECK (source IN ('year', 'listing'));

-- The current fetch cycle's discovery answer: its TotalRecords, a digest of
-- TotalRecords + YearList + page 1 (an unchanged company is refreshed with
-- that one call), and how the rest of the cycle is fetched:
-- 'none' (nothing left), 'listing' (listing pages), 'years' (per year).
ALTER TABLE companies ADD COLUMN total_records INTEGER;
ALTER TABLE companies ADD COLUMN discovery_digest TEXT;
ALTER TABLE companies ADD COLUMN fetch_plan TEXT CHECK (fetch_plan IN ('none', 'listing', 'years'));

CREATE TABLE company_listings (
    search_key    TEXT PRIMARY KEY REFERENCES companies(search_key),
    state         TEXT NOT NULL CHECK (state IN ('partial', 'complete')),
    total_records INTEGER NOT NULL,           -- TotalRecords of the listing
    pages_total   INTEGER NOT NULL,
    pages_fetched INTEGER NOT NULL,           -- checkpoint: listing pages 1..pages_fetched are stored
    rows_fetched  INTEGER NOT NULL,           -- rows those pages held (they must add up to total_records)
    page_size     INTEGER NOT NULL,
    started_at    TEXT NOT NULL,              -- when page 1 of this listing was stored
    fetched_at    TEXT NOT NULL               -- when its last stored page was
) WITHOUT ROWID;

CREATE TABLE listing_evidence (
    evidence_id  INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('every_year', 'some_years', 'contradiction')),
    search_key   TEXT NOT NULL,
    order_number TEXT,                        -- the vendor's reference of the answer that showed it
    observed_at  TEXT NOT NULL,
    detail       TEXT NOT NULL
);
