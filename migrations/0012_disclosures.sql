-- Version 12: who sells to whom, one customer once, with every change kept.
--
-- * `customer` is the dimension: one row per distinct customer. Its
--   identity is its KeyNo when an answer gave one (as given: the views' `key_no`
--   is the customer's, and look-ups by it go through its index), else its normalised name
--   (white space dropped, full-width forms as ASCII, letters upper case). A
--   placeholder (`客户一`, `第一名`, `前五名客户合计`, …) is no customer: it
--   has no row here.
-- * `customer_names` holds every name text once; look-ups by name go through
--   its unique index.
-- * `disclosure` is the fact, one row per version: a company × report period
--   × customer, with the amount and share as numbers (their texts only when
--   they are not what printf('%.2f') prints), the relationship and source,
--   and the query and position that brought it. A row of a placeholder or
--   without a name is identified by its position in its period (`slot`),
--   never merged across companies, and marked `anonymised`. A named
--   customer's `slot` counts its rows in the period (0 but for repeats).
--   A version is current while `valid_to` is NULL. A changed value closes it
--   (`closed_as` 3, changed) and opens its successor (`previous_id`); a
--   customer gone from a re-fetched period is closed (4, removed), never
--   deleted. `valid_from`/`valid_to` are when this file learned it, which is
--   not when the report was published; `opened_run`/`closed_run` the runs.
--
-- The upgrade fills it from the rows the file holds (their `fetched_at` as
-- `valid_from`); from version 13 on, the current versions are the rows.

CREATE TABLE customer_names (
    name_id INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE
);

CREATE TABLE customer (
    customer_id   INTEGER PRIMARY KEY,
    key_no        TEXT,                    -- the identity when an answer gave one
    norm_name     TEXT,                    -- else the normalised name
    name_id       INTEGER NOT NULL,        -- the name as first seen (customer_names)
    first_seen_at TEXT NOT NULL
);
CREATE UNIQUE INDEX customer_by_key_no ON customer(key_no) WHERE key_no IS NOT NULL;
CREATE UNIQUE INDEX customer_by_norm_name ON customer(norm_name) WHERE key_no IS NULL;

CREATE TABLE disclosure (
    version_id         INTEGER PRIMARY KEY,
    company_id         INTEGER NOT NULL,   -- companies.company_id
    period             TEXT NOT NULL,      -- the row's year ('2024', '2024-06'), else its query year
    customer_id        INTEGER,            -- customer; NULL when anonymised or unnamed
    slot               INTEGER NOT NULL,
    anonymised         INTEGER NOT NULL,   -- 1: a placeholder or no name
    name_id            INTEGER,            -- the name as this row wrote it (customer_names)
    image_url,                             -- as customer_rows keeps it, beside the customer's KeyNo
                                           -- (NULL: the KeyNo's usual address, or none without one;
                                           -- integer: image_templates; X'': none; else the text)
    year,                                  -- NULL: = period; X'': none; else the text
    query_year         TEXT NOT NULL,
    from_listing       INTEGER NOT NULL,
    page_index         INTEGER NOT NULL,
    row_index          INTEGER NOT NULL,
    sales_amount       REAL,
    sales_amount_text  TEXT,               -- NULL with a number: printf('%.2f', number)
    sales_percent      REAL,
    sales_percent_text TEXT,
    relationship       TEXT,
    source             TEXT,
    fetched_at         TEXT,               -- when a page last brought it (NULL: valid_from)
    valid_from         TEXT NOT NULL,
    valid_to           TEXT,
    opened_run         INTEGER,
    closed_run         INTEGER,
    opened_as          INTEGER NOT NULL,   -- 1 new_period | 2 added | 3 changed
    closed_as          INTEGER,            -- 3 changed | 4 removed
    previous_id        INTEGER             -- the version this one replaced
);
CREATE INDEX disclosure_current ON disclosure(company_id, query_year) WHERE valid_to IS NULL;
-- A customer's disclosures, current ones first: who sells to it, and how
-- many companies do (covering: `customer_reach` reads no table row).
CREATE INDEX disclosure_by_customer ON disclosure(customer_id, valid_to, company_id) WHERE customer_id IS NOT NULL;
CREATE INDEX disclosure_by_name ON disclosure(name_id);
CREATE INDEX disclosure_opened ON disclosure(opened_run);
CREATE INDEX disclosure_closed ON disclosure(closed_run) WHERE valid_to IS NOT NULL;

-- Every version: the columns of `customers`, then the period, the
-- customer's identity, and when and by which run the version was current.
CREATE VIEW customers_history AS
SELECT co.search_key AS search_key,
       CASE WHEN d.year IS NULL THEN d.period WHEN typeof(d.year) = 'blob' THEN NULL ELSE d.year END AS year,
       d.query_year AS query_year,
       d.from_listing AS from_listing,
       d.page_index AS page_index,
       d.row_index AS row_index,
       n.name AS name,
       c.key_no AS key_no,
       CASE WHEN d.image_url IS NULL AND length(c.key_no) = 32 AND NOT c.key_no GLOB '*[^0-9a-f]*'
            THEN 'https://qccdata.qichacha.com/AutoImage/' || c.key_no || '.jpg?x-oss-process=image/resize,w_120'
            WHEN typeof(d.image_url) = 'integer'
            THEN (SELECT t.prefix || CASE WHEN t.keyed = 0 THEN '' ELSE c.key_no END || t.suffix
                  FROM image_templates t WHERE t.template_id = d.image_url)
            WHEN typeof(d.image_url) = 'blob' THEN NULL
            ELSE d.image_url END AS image_url,
       d.sales_amount AS sales_amount,
       CASE WHEN d.sales_amount_text IS NOT NULL OR d.sales_amount IS NULL THEN d.sales_amount_text
            ELSE printf('%.2f', d.sales_amount) END AS sales_amount_text,
       d.sales_percent AS sales_percent,
       CASE WHEN d.sales_percent_text IS NOT NULL OR d.sales_percent IS NULL THEN d.sales_percent_text
            ELSE printf('%.2f', d.sales_percent) END AS sales_percent_text,
       d.relationship AS relationship,
       d.source AS source,
       COALESCE(d.fetched_at, d.valid_from) AS fetched_at,
       d.period AS period,
       d.customer_id AS customer_id,
       d.anonymised AS anonymised,
       d.valid_from AS valid_from,
       d.valid_to AS valid_to,
       d.opened_run AS opened_run,
       d.closed_run AS closed_run
FROM disclosure d
JOIN companies co ON co.company_id = d.company_id
LEFT JOIN customer c ON c.customer_id = d.customer_id
LEFT JOIN customer_names n ON n.name_id = d.name_id;

-- One row per change: a period new to the company, a customer added to a
-- period, one whose amount, share or other value changed, one removed.
CREATE VIEW customer_changes AS
SELECT co.search_key AS search_key,
       d.period AS period,
       n.name AS name,
       c.key_no AS key_no,
       d.customer_id AS customer_id,
       d.anonymised AS anonymised,
       CASE d.opened_as WHEN 1 THEN 'new_period' WHEN 2 THEN 'added' ELSE 'changed' END AS change,
       p.sales_amount AS old_sales_amount,
       d.sales_amount AS new_sales_amount,
       p.sales_percent AS old_sales_percent,
       d.sales_percent AS new_sales_percent,
       d.valid_from AS seen_at,
       d.opened_run AS run_id
FROM disclosure d
JOIN companies co ON co.company_id = d.company_id
LEFT JOIN customer c ON c.customer_id = d.customer_id
LEFT JOIN customer_names n ON n.name_id = d.name_id
LEFT JOIN disclosure p ON p.version_id = d.previous_id
UNION ALL
SELECT co.search_key, d.period, n.name, c.key_no, d.customer_id, d.anonymised, 'removed',
       d.sales_amount, NULL, d.sales_percent, NULL, d.valid_to, d.closed_run
FROM disclosure d
JOIN companies co ON co.company_id = d.company_id
LEFT JOIN customer c ON c.customer_id = d.customer_id
LEFT JOIN customer_names n ON n.name_id = d.name_id
WHERE d.valid_to IS NOT NULL AND d.closed_as = 4;

-- Each customer (placeholders are none) with how many of the file's
-- companies disclose it now, and in how many of their report periods.
CREATE VIEW customer_reach AS
SELECT r.customer_id AS customer_id,
       n.name AS name,
       c.key_no AS key_no,
       r.companies AS companies,
       r.periods AS periods
FROM (SELECT customer_id, COUNT(DISTINCT company_id) AS companies, COUNT(*) AS periods
      FROM disclosure WHERE valid_to IS NULL AND customer_id IS NOT NULL GROUP BY customer_id) r
JOIN customer c ON c.customer_id = r.customer_id
JOIN customer_names n ON n.name_id = c.name_id;
