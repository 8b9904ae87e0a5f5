-- Version 13: the current versions are the rows.
--
-- `customers` reads the disclosures whose `valid_to` is NULL, with the
-- columns and values it always had; `customer_rows` and the encodings only
-- it needed (`row_names`, `row_labels`, the hundredths, the per-company time
-- base) go. (The upgrade to version 12 made every row of `customer_rows` a
-- current version first.)
--
-- A re-fetched unit of more than one page still collects its pages aside
-- until its last one is in, now as the answer gave them (`staged_rows`:
-- plain text and numbers, nothing learned); the rows staged by an older
-- version are decoded into it.

CREATE TABLE staged_rows (
    company_id         INTEGER NOT NULL,   -- companies.company_id
    query_year         TEXT NOT NULL,      -- the year asked for; a listing row's report year
    from_listing       INTEGER NOT NULL,
    page_index         INTEGER NOT NULL,
    row_index          INTEGER NOT NULL,
    year               TEXT,               -- as the row gave it
    name               TEXT,
    key_no             TEXT,
    image_url          TEXT,
    sales_amount       REAL,
    sales_amount_text  TEXT,               -- as the answer wrote it
    sales_percent      REAL,
    sales_percent_text TEXT,
    relationship       TEXT,
    source             TEXT,
    fetched_at         TEXT NOT NULL,
    PRIMARY KEY (company_id, from_listing, query_year, page_index, row_index)
) WITHOUT ROWID;

INSERT INTO staged_rows
SELECT r.company_id, r.query_year, r.from_listing, r.page_index, r.row_index,
       CASE WHEN r.year IS NULL THEN r.query_year WHEN typeof(r.year) = 'blob' THEN NULL ELSE r.year END,
       CASE WHEN typeof(r.name) = 'integer' THEN (SELECT n.name FROM row_names n WHERE n.name_id = r.name)
            ELSE r.name END,
       CASE WHEN typeof(r.key_no) = 'blob' THEN lower(hex(r.key_no)) ELSE r.key_no END,
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
            ELSE r.image_url END,
       CASE WHEN typeof(r.sales_amount) = 'integer' THEN r.sales_amount / 100.0 ELSE r.sales_amount END,
       CASE WHEN r.sales_amount_text IS NOT NULL OR r.sales_amount IS NULL THEN r.sales_amount_text
            WHEN typeof(r.sales_amount) = 'integer' THEN printf('%.2f', r.sales_amount / 100.0)
            ELSE printf('%.2f', r.sales_amount) END,
       CASE WHEN typeof(r.sales_percent) = 'integer' THEN r.sales_percent / 100.0 ELSE r.sales_percent END,
       CASE WHEN r.sales_percent_text IS NOT NULL OR r.sales_percent IS NULL THEN r.sales_percent_text
            WHEN typeof(r.sales_percent) = 'integer' THEN printf('%.2f', r.sales_percent / 100.0)
            ELSE printf('%.2f', r.sales_percent) END,
       CASE WHEN typeof(r.relationship) = 'integer'
            THEN (SELECT l.label FROM row_labels l WHERE l.label_id = r.relationship)
            ELSE r.relationship END,
       CASE WHEN typeof(r.source) = 'integer'
            THEN (SELECT l.label FROM row_labels l WHERE l.label_id = r.source)
            ELSE r.source END,
       CASE WHEN typeof(r.fetched_at) = 'integer'
            THEN strftime('%Y-%m-%dT%H:%M:%S', (COALESCE(co.fetched_base, 0) + r.fetched_at) / 1000, 'unixepoch')
                 || printf('.%03dZ', (COALESCE(co.fetched_base, 0) + r.fetched_at) % 1000)
            ELSE r.fetched_at END
FROM customer_rows_staging r LEFT JOIN companies co ON co.company_id = r.company_id;

DROP VIEW company_summary;
DROP VIEW latest_customers;
DROP VIEW customers;
DROP TABLE customer_rows_staging;
DROP TABLE customer_rows;
DROP TABLE row_names;
DROP TABLE row_labels;
ALTER TABLE companies DROP COLUMN fetched_base;

-- The contract: the current versions, with the columns and values `customers`
-- always had (`customers_history` decodes them; the planner reads through it).
CREATE VIEW customers AS
SELECT search_key, year, query_year, from_listing, page_index, row_index, name, key_no, image_url,
       sales_amount, sales_amount_text, sales_percent, sales_percent_text, relationship, source, fetched_at
FROM customers_history
WHERE valid_to IS NULL;

CREATE VIEW latest_customers AS
SELECT c.*
FROM customers c
JOIN (SELECT search_key, MAX(query_year) AS query_year FROM customers GROUP BY search_key) l
  ON l.search_key = c.search_key AND l.query_year = c.query_year;

-- One line per company, as before; its largest customer in its latest year.
CREATE VIEW company_summary AS
SELECT co.search_key,
       co.state,
       co.status_code,
       (SELECT COUNT(DISTINCT query_year) FROM disclosure d
         WHERE d.company_id = co.company_id AND d.valid_to IS NULL) AS years_covered,
       (SELECT MIN(query_year) FROM disclosure d WHERE d.company_id = co.company_id AND d.valid_to IS NULL) AS first_year,
       (SELECT MAX(query_year) FROM disclosure d WHERE d.company_id = co.company_id AND d.valid_to IS NULL) AS last_year,
       (SELECT COUNT(*) FROM disclosure d WHERE d.company_id = co.company_id AND d.valid_to IS NULL) AS customer_rows,
       (SELECT n.name FROM disclosure d LEFT JOIN customer_names n ON n.name_id = d.name_id
         WHERE d.company_id = co.company_id AND d.valid_to IS NULL AND d.sales_amount IS NOT NULL
         ORDER BY d.query_year DESC, d.sales_amount DESC, d.from_listing, d.page_index, d.row_index LIMIT 1) AS top_customer_latest_year,
       (SELECT d.sales_percent FROM disclosure d
         WHERE d.company_id = co.company_id AND d.valid_to IS NULL AND d.sales_amount IS NOT NULL
         ORDER BY d.query_year DESC, d.sales_amount DESC, d.from_listing, d.page_index, d.row_index LIMIT 1) AS top_customer_percent,
       co.fetched_at
FROM companies co;
