-- Version 11: the values a row repeats, stored once or small.
--
-- * `sales_amount`, `sales_percent`: when the text was written the usual way
--   (`41377.22`, `57.10`: what `printf('%.2f', n)` prints, so its text column
--   is NULL since version 10), the number is kept as an integer count of
--   hundredths (4137722, 5710): 2–4 bytes instead of 8. The view divides by
--   100.0, which gives exactly the number read from the text (both are the
--   double nearest to the same decimal). Any other number stays a REAL.
-- * `source`, `relationship`: a text the file has seen is kept once in
--   `row_labels` and a row stores its integer `label_id` (the most frequent
--   take 0 and 1, which SQLite stores in no bytes at all). An empty text
--   stays '', NULL stays NULL; a text outside the labels stays text.
-- * `name`: a customer's name that more than one row carries (`客户一`, a
--   large customer of many companies, the same customer in every year) is
--   kept once in `row_names` and a row stores its integer `name_id`. A name
--   seen once stays text (a table entry would cost more than it saves).
-- * `fetched_at`: milliseconds since the company's `fetched_base` (itself
--   milliseconds since 1970, set when its first row was stored) instead of
--   since 1970: the rows of a fetch are seconds apart, so 0–3 bytes instead
--   of 6. A text stays text.
--
-- The columns become untyped (a REAL column would turn an integer into a
-- REAL), so `customer_rows` and its staging table are rebuilt. Their key
-- orders `query_year` newest first, the order answers list the years in: a
-- company's later pages (older years) then land after its earlier ones, so
-- pages fill as when appending (about 9 bytes a row free instead of 14–17). The view
-- decodes each value exactly: `SELECT * FROM customers` gives what it gave
-- before, value for value.

CREATE TABLE row_labels (
    label_id INTEGER PRIMARY KEY,
    label    TEXT NOT NULL UNIQUE
);

-- No index on the text: only the writer looks a name up, in memory.
CREATE TABLE row_names (
    name_id INTEGER PRIMARY KEY,
    name    TEXT NOT NULL
);

ALTER TABLE companies ADD COLUMN fetched_base INTEGER;

-- The labels: every text of the two columns, the most frequent first
-- (numbered from 0), up to the writer's limit of 10,000.
INSERT INTO row_labels (label_id, label)
SELECT row_number() OVER (ORDER BY COUNT(*) DESC, v) - 1, v
FROM (SELECT source AS v FROM customer_rows UNION ALL SELECT relationship FROM customer_rows
      UNION ALL SELECT source FROM customer_rows_staging UNION ALL SELECT relationship FROM customer_rows_staging)
WHERE typeof(v) = 'text' AND v <> ''
GROUP BY v ORDER BY COUNT(*) DESC, v LIMIT 10000;

-- The names more than one row carries, the most frequent first, up to the
-- writer's limit of 100,000 (an index for this migration only).
INSERT INTO row_names (name_id, name)
SELECT row_number() OVER (ORDER BY COUNT(*) DESC, v) - 1, v
FROM (SELECT name AS v FROM customer_rows UNION ALL SELECT name FROM customer_rows_staging)
WHERE typeof(v) = 'text' AND v <> ''
GROUP BY v HAVING COUNT(*) > 1 ORDER BY COUNT(*) DESC, v LIMIT 100000;
CREATE INDEX v11_row_names_name ON row_names(name);

UPDATE companies SET fetched_base = (
    SELECT MIN(t) FROM (SELECT fetched_at AS t FROM customer_rows r
                        WHERE r.company_id = companies.company_id AND typeof(r.fetched_at) = 'integer'
                        UNION ALL
                        SELECT fetched_at FROM customer_rows_staging s
                        WHERE s.company_id = companies.company_id AND typeof(s.fetched_at) = 'integer'));

DROP VIEW company_summary;
DROP VIEW latest_customers;
DROP VIEW customers;

CREATE TABLE customer_rows_v11 (
    company_id         INTEGER NOT NULL,      -- companies.company_id
    query_year         TEXT NOT NULL,
    from_listing       INTEGER NOT NULL DEFAULT 0,
    page_index         INTEGER NOT NULL,
    row_index          INTEGER NOT NULL,
    year,                                     -- NULL: = query_year; X'': none; else the text
    name,                                     -- integer: row_names; else the text
    key_no,                                   -- 16 bytes for 32 lower-case hex digits, else the text
    image_url,                                -- NULL: the KeyNo's vendor address; integer: image_templates; X'': none
    sales_amount,                             -- integer: hundredths (text NULL); real: the number
    sales_amount_text  TEXT,                  -- NULL with a number: printf('%.2f', number)
    sales_percent,                            -- as sales_amount
    sales_percent_text TEXT,
    relationship,                             -- integer: row_labels; else the text
    source,                                   -- integer: row_labels; else the text
    fetched_at         NOT NULL,              -- integer: ms since companies.fetched_base; else the text
    PRIMARY KEY (company_id, query_year DESC, from_listing, page_index, row_index)
) WITHOUT ROWID;

CREATE TABLE customer_rows_staging_v11 (
    company_id         INTEGER NOT NULL,
    query_year         TEXT NOT NULL,
    from_listing       INTEGER NOT NULL DEFAULT 0,
    page_index         INTEGER NOT NULL,
    row_index          INTEGER NOT NULL,
    year,
    name,
    key_no,
    image_url,
    sales_amount,
    sales_amount_text  TEXT,
    sales_percent,
    sales_percent_text TEXT,
    relationship,
    source,
    fetched_at         NOT NULL,
    PRIMARY KEY (company_id, query_year DESC, from_listing, page_index, row_index)
) WITHOUT ROWID;

-- The encodings, as SQL (the writer applies the same rules in Rust; a test
-- checks the two agree). Hundredths only where they give the number back.
CREATE TEMP VIEW v11_encoded AS
SELECT r.staged, r.company_id, r.query_year, r.from_listing, r.page_index, r.row_index, r.year,
       COALESCE((SELECT n.name_id FROM row_names n WHERE n.name = r.name AND typeof(r.name) = 'text'), r.name) AS name,
       r.key_no,
       r.image_url,
       CASE WHEN r.sales_amount_text IS NULL AND typeof(r.sales_amount) = 'real'
                 AND abs(r.sales_amount) < 1e13 AND CAST(round(r.sales_amount * 100) AS INTEGER) / 100.0 = r.sales_amount
            THEN CAST(round(r.sales_amount * 100) AS INTEGER) ELSE r.sales_amount END AS sales_amount,
       r.sales_amount_text,
       CASE WHEN r.sales_percent_text IS NULL AND typeof(r.sales_percent) = 'real'
                 AND abs(r.sales_percent) < 1e13 AND CAST(round(r.sales_percent * 100) AS INTEGER) / 100.0 = r.sales_percent
            THEN CAST(round(r.sales_percent * 100) AS INTEGER) ELSE r.sales_percent END AS sales_percent,
       r.sales_percent_text,
       COALESCE((SELECT l.label_id FROM row_labels l WHERE l.label = r.relationship AND typeof(r.relationship) = 'text'),
                r.relationship) AS relationship,
       COALESCE((SELECT l.label_id FROM row_labels l WHERE l.label = r.source AND typeof(r.source) = 'text'),
                r.source) AS source,
       CASE WHEN typeof(r.fetched_at) = 'integer' THEN r.fetched_at - COALESCE(co.fetched_base, 0)
            ELSE r.fetched_at END AS fetched_at
FROM (SELECT 0 AS staged, * FROM customer_rows UNION ALL SELECT 1, * FROM customer_rows_staging) r
LEFT JOIN companies co ON co.company_id = r.company_id;

INSERT INTO customer_rows_v11
SELECT company_id, query_year, from_listing, page_index, row_index, year, name, key_no, image_url, sales_amount,
       sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at
FROM v11_encoded WHERE staged = 0 ORDER BY company_id, query_year DESC, from_listing, page_index, row_index;
INSERT INTO customer_rows_staging_v11
SELECT company_id, query_year, from_listing, page_index, row_index, year, name, key_no, image_url, sales_amount,
       sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at
FROM v11_encoded WHERE staged = 1 ORDER BY company_id, query_year DESC, from_listing, page_index, row_index;
DROP VIEW v11_encoded;
DROP INDEX v11_row_names_name;

DROP TABLE customer_rows;
DROP TABLE customer_rows_staging;
ALTER TABLE customer_rows_v11 RENAME TO customer_rows;
ALTER TABLE customer_rows_staging_v11 RENAME TO customer_rows_staging;

-- The contract, decoded: the same columns as before.
CREATE VIEW customers AS
SELECT co.search_key AS search_key,
       CASE WHEN r.year IS NULL THEN r.query_year WHEN typeof(r.year) = 'blob' THEN NULL ELSE r.year END AS year,
       r.query_year AS query_year,
       r.from_listing AS from_listing,
       r.page_index AS page_index,
       r.row_index AS row_index,
       CASE WHEN typeof(r.name) = 'integer' THEN (SELECT n.name FROM row_names n WHERE n.name_id = r.name)
            ELSE r.name END AS name,
       CASE WHEN typeof(r.key_no) = 'blob' THEN lower(hex(r.key_no)) ELSE r.key_no END AS key_no,
       CASE WHEN r.image_url IS NULL AND typeof(r.key_no) = 'blob'
            THEN 'https://qccdata.qichacha.com/AutoImage/' || lower(hex(r.key_no)) || '.jpg?x-oss-process=image/resize,w_120'
            WHEN typeof(r.image_url) = 'integer'
            THEN (SELECT t.prefix
                         || CASE WHEN t.keyed = 0 THEN ''
                                 WHEN typeof(r.key_no) = 'blob' THEN lower(hex(r.key_no))
                                 ELSE r.key_no END
                         || t.suffix
                  FROM image_templates t WHERE t.template_id = r.image_url)
            WHEN typeof(r.image_url) = 'blob' THEN NULL
            ELSE r.image_url END AS image_url,
       CASE WHEN typeof(r.sales_amount) = 'integer' THEN r.sales_amount / 100.0 ELSE r.sales_amount END
         AS sales_amount,
       CASE WHEN r.sales_amount_text IS NOT NULL OR r.sales_amount IS NULL THEN r.sales_amount_text
            WHEN typeof(r.sales_amount) = 'integer' THEN printf('%.2f', r.sales_amount / 100.0)
            ELSE printf('%.2f', r.sales_amount) END AS sales_amount_text,
       CASE WHEN typeof(r.sales_percent) = 'integer' THEN r.sales_percent / 100.0 ELSE r.sales_percent END
         AS sales_percent,
       CASE WHEN r.sales_percent_text IS NOT NULL OR r.sales_percent IS NULL THEN r.sales_percent_text
            WHEN typeof(r.sales_percent) = 'integer' THEN printf('%.2f', r.sales_percent / 100.0)
            ELSE printf('%.2f', r.sales_percent) END AS sales_percent_text,
       CASE WHEN typeof(r.relationship) = 'integer'
            THEN (SELECT l.label FROM row_labels l WHERE l.label_id = r.relationship)
            ELSE r.relationship END AS relationship,
       CASE WHEN typeof(r.source) = 'integer'
            THEN (SELECT l.label FROM row_labels l WHERE l.label_id = r.source)
            ELSE r.source END AS source,
       CASE WHEN typeof(r.fetched_at) = 'integer'
            THEN strftime('%Y-%m-%dT%H:%M:%S', (co.fetched_base + r.fetched_at) / 1000, 'unixepoch')
                 || printf('.%03dZ', (co.fetched_base + r.fetched_at) % 1000)
            ELSE r.fetched_at END AS fetched_at
FROM customer_rows r JOIN companies co ON co.company_id = r.company_id;

CREATE VIEW latest_customers AS
SELECT c.*
FROM customers c
JOIN (SELECT search_key, MAX(query_year) AS query_year FROM customers GROUP BY search_key) l
  ON l.search_key = c.search_key AND l.query_year = c.query_year;

-- One line per company, as before; its largest customer by the decoded amount.
CREATE VIEW company_summary AS
SELECT co.search_key,
       co.state,
       co.status_code,
       (SELECT COUNT(DISTINCT query_year) FROM customer_rows cu WHERE cu.company_id = co.company_id) AS years_covered,
       (SELECT MIN(query_year) FROM customer_rows cu WHERE cu.company_id = co.company_id) AS first_year,
       (SELECT MAX(query_year) FROM customer_rows cu WHERE cu.company_id = co.company_id) AS last_year,
       (SELECT COUNT(*) FROM customer_rows cu WHERE cu.company_id = co.company_id) AS customer_rows,
       (SELECT CASE WHEN typeof(cu.name) = 'integer' THEN (SELECT n.name FROM row_names n WHERE n.name_id = cu.name)
                    ELSE cu.name END
         FROM customer_rows cu WHERE cu.company_id = co.company_id AND cu.sales_amount IS NOT NULL
         ORDER BY cu.query_year DESC,
                  CASE WHEN typeof(cu.sales_amount) = 'integer' THEN cu.sales_amount / 100.0 ELSE cu.sales_amount END DESC
         LIMIT 1) AS top_customer_latest_year,
       (SELECT CASE WHEN typeof(cu.sales_percent) = 'integer' THEN cu.sales_percent / 100.0 ELSE cu.sales_percent END
         FROM customer_rows cu WHERE cu.company_id = co.company_id AND cu.sales_amount IS NOT NULL
         ORDER BY cu.query_year DESC,
                  CASE WHEN typeof(cu.sales_amount) = 'integer' THEN cu.sales_amount / 100.0 ELSE cu.sales_amount END DESC
         LIMIT 1) AS top_customer_percent,
       co.fetched_at
FROM companies co;
