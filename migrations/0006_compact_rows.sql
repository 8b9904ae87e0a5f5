-- Version 6: half the bytes per customer row.
--
-- What analysts use stays as it was: `customers`, `latest_customers` and
-- `company_summary` keep their names and columns (as views now). Underneath:
--
-- * `customer_rows` stores each row under its company's integer
--   `company_id` instead of repeating the search key;
-- * `fetched_at` is milliseconds since 1970 (the view spells it as before:
--   2026-11-30T20:40:52.938Z); a value that does not read back exactly stays
--   text;
-- * `key_no`, when it is 32 lower-case hex digits (every KeyNo seen), is its
--   16 bytes; otherwise the text as received;
-- * `image_url` is NULL when it is the vendor's picture address of the row's
--   KeyNo ('https://qccdata.qichacha.com/AutoImage/<KeyNo>.jpg?x-oss-process=image/resize,w_120'),
--   which the view rebuilds; an absent address of a row with a KeyNo is an
--   empty blob (X''); anything else is the text as received;
-- * `year` is NULL when it equals `query_year` (the usual case), an empty
--   blob when the row had none, and the text otherwise.
--
-- The view decodes each of these exactly: `SELECT * FROM customers` gives
-- what it gave before, value for value.

-- Rows whose company has no record (the tool never leaves such rows; a file
-- edited by hand might) get one, so that no row is lost on the way.
INSERT INTO companies (search_key, norm_key, state, message, updated_at)
SELECT DISTINCT k.search_key, char(0) || 'orphan ' || k.search_key, 'pending',
       'rows found without a company record; kept by the upgrade to version 6',
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
FROM (SELECT search_key FROM customers UNION SELECT search_key FROM customers_staging) k
WHERE k.search_key NOT IN (SELECT search_key FROM companies);

ALTER TABLE companies ADD COLUMN company_id INTEGER;
UPDATE companies SET company_id = rowid;
CREATE UNIQUE INDEX companies_company_id ON companies(company_id);

DROP VIEW latest_customers;
DROP VIEW company_summary;

CREATE TABLE customer_rows (
    company_id         INTEGER NOT NULL,      -- companies.company_id
    query_year         TEXT NOT NULL,
    from_listing       INTEGER NOT NULL DEFAULT 0,
    page_index         INTEGER NOT NULL,
    row_index          INTEGER NOT NULL,
    year,                                     -- NULL: = query_year; X'': none; else the text
    name               TEXT,
    key_no,                                   -- 16 bytes for 32 lower-case hex digits, else the text
    image_url,                                -- NULL: the KeyNo's picture address (or none without KeyNo); X'': none
    sales_amount       REAL,
    sales_amount_text  TEXT,
    sales_percent      REAL,
    sales_percent_text TEXT,
    relationship       TEXT,
    source             TEXT,
    fetched_at         NOT NULL,              -- ms since 1970-01-01 UTC (else the text)
    PRIMARY KEY (company_id, query_year, from_listing, page_index, row_index)
) WITHOUT ROWID;

CREATE TABLE customer_rows_staging (
    company_id         INTEGER NOT NULL,
    query_year         TEXT NOT NULL,
    from_listing       INTEGER NOT NULL DEFAULT 0,
    page_index         INTEGER NOT NULL,
    row_index          INTEGER NOT NULL,
    year,
    name               TEXT,
    key_no,
    image_url,
    sales_amount       REAL,
    sales_amount_text  TEXT,
    sales_percent      REAL,
    sales_percent_text TEXT,
    relationship       TEXT,
    source             TEXT,
    fetched_at         NOT NULL,
    PRIMARY KEY (company_id, query_year, from_listing, page_index, row_index)
) WITHOUT ROWID;

-- The encodings, as SQL (the writer applies the same rules in Rust; a test
-- checks the two agree).
CREATE TEMP VIEW v6_encoded AS
SELECT c.staged, co.company_id, c.query_year, c.from_listing, c.page_index, c.row_index,
       CASE WHEN c.year IS NULL THEN X'' WHEN c.year = c.query_year THEN NULL ELSE c.year END AS year,
       c.name,
       CASE WHEN length(c.key_no) = 32 AND c.key_no NOT GLOB '*[^0-9a-f]*' THEN unhex(c.key_no) ELSE c.key_no END
         AS key_no,
       CASE WHEN c.key_no IS NULL THEN c.image_url
            WHEN c.image_url IS NULL THEN X''
            WHEN c.image_url = 'https://qccdata.qichacha.com/AutoImage/' || c.key_no || '.jpg?x-oss-process=image/resize,w_120'
                 AND length(c.key_no) = 32 AND c.key_no NOT GLOB '*[^0-9a-f]*' THEN NULL
            ELSE c.image_url END AS image_url,
       c.sales_amount, c.sales_amount_text, c.sales_percent, c.sales_percent_text, c.relationship, c.source,
       CASE WHEN c.fetched_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
                 AND c.fetched_at >= '1970' AND strftime('%Y-%m-%dT%H:%M:%fZ', c.fetched_at) = c.fetched_at
            THEN (unixepoch(c.fetched_at) * 1000 + CAST(substr(c.fetched_at, 21, 3) AS INTEGER))
            ELSE c.fetched_at END AS fetched_at
FROM (SELECT 0 AS staged, * FROM customers UNION ALL SELECT 1, * FROM customers_staging) c
JOIN companies co ON co.search_key = c.search_key;

INSERT INTO customer_rows
SELECT company_id, query_year, from_listing, page_index, row_index, year, name, key_no, image_url, sales_amount,
       sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at
FROM v6_encoded WHERE staged = 0;
INSERT INTO customer_rows_staging
SELECT company_id, query_year, from_listing, page_index, row_index, year, name, key_no, image_url, sales_amount,
       sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at
FROM v6_encoded WHERE staged = 1;
DROP VIEW v6_encoded;

DROP TABLE customers;
DROP TABLE customers_staging;

-- The contract, decoded. Only the columns a query uses are computed.
CREATE VIEW customers AS
SELECT co.search_key AS search_key,
       CASE WHEN r.year IS NULL THEN r.query_year WHEN typeof(r.year) = 'blob' THEN NULL ELSE r.year END AS year,
       r.query_year AS query_year,
       r.from_listing AS from_listing,
       r.page_index AS page_index,
       r.row_index AS row_index,
       r.name AS name,
       CASE WHEN typeof(r.key_no) = 'blob' THEN lower(hex(r.key_no)) ELSE r.key_no END AS key_no,
       CASE WHEN r.image_url IS NULL AND typeof(r.key_no) = 'blob'
            THEN 'https://qccdata.qichacha.com/AutoImage/' || lower(hex(r.key_no)) || '.jpg?x-oss-process=image/resize,w_120'
            WHEN typeof(r.image_url) = 'blob' THEN NULL
            ELSE r.image_url END AS image_url,
       r.sales_amount AS sales_amount,
       r.sales_amount_text AS sales_amount_text,
       r.sales_percent AS sales_percent,
       r.sales_percent_text AS sales_percent_text,
       r.relationship AS relationship,
       r.source AS source,
       CASE WHEN typeof(r.fetched_at) = 'integer'
            THEN strftime('%Y-%m-%dT%H:%M:%S', r.fetched_at / 1000, 'unixepoch') || printf('.%03dZ', r.fetched_at % 1000)
            ELSE r.fetched_at END AS fetched_at
FROM customer_rows r JOIN companies co ON co.company_id = r.company_id;

-- Each company's customers in its latest year that has any (as before; a
-- filter on search_key reaches the inner query, so one company's rows are
-- all that is read for it).
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
       (SELECT COUNT(DISTINCT query_year) FROM customer_rows cu WHERE cu.company_id = co.company_id) AS years_covered,
       (SELECT MIN(query_year) FROM customer_rows cu WHERE cu.company_id = co.company_id) AS first_year,
       (SELECT MAX(query_year) FROM customer_rows cu WHERE cu.company_id = co.company_id) AS last_year,
       (SELECT COUNT(*) FROM customer_rows cu WHERE cu.company_id = co.company_id) AS customer_rows,
       (SELECT name FROM customer_rows cu WHERE cu.company_id = co.company_id AND cu.sales_amount IS NOT NULL
         ORDER BY cu.query_year DESC, cu.sales_amount DESC LIMIT 1) AS top_customer_latest_year,
       (SELECT sales_percent FROM customer_rows cu WHERE cu.company_id = co.company_id AND cu.sales_amount IS NOT NULL
         ORDER BY cu.query_year DESC, cu.sales_amount DESC LIMIT 1) AS top_customer_percent,
       co.fetched_at
FROM companies co;
