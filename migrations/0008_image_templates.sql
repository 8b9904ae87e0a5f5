-- Version 8: picture addresses as learned templates.
--
-- Real answers carry picture addresses in several shapes, most of them built
-- around the row's KeyNo (`<prefix><KeyNo><suffix>`), some a constant (a
-- default picture). Each shape is kept once, in `image_templates`, and a row
-- whose address fits one stores the template's integer id in
-- `customer_rows.image_url`:
--
-- * `keyed = 1`: the address is prefix || the row's KeyNo (as the view spells
--   it) || suffix;
-- * `keyed = 0`: the address is prefix (and suffix is ''): an address that
--   does not hold its row's KeyNo, seen in the rows of more than one company.
--
-- The earlier encodings keep their meaning (NULL: the vendor document's
-- address of the KeyNo; X'': none; text: the address as received), so an
-- upgraded file reads back exactly as before. The writer learns new
-- templates from the answers it stores; this upgrade learns them from the
-- addresses already stored as text.

CREATE TABLE image_templates (
    template_id INTEGER PRIMARY KEY,
    prefix      TEXT NOT NULL,
    suffix      TEXT NOT NULL,
    keyed       INTEGER NOT NULL,
    UNIQUE (keyed, prefix, suffix)
);

-- Addresses already stored as text that hold their row's KeyNo.
CREATE TEMP VIEW v8_keyed AS
SELECT r.image_url, r.k,
       substr(r.image_url, 1, instr(r.image_url, r.k) - 1) AS prefix,
       substr(r.image_url, instr(r.image_url, r.k) + length(r.k)) AS suffix
FROM (SELECT image_url,
             CASE WHEN typeof(key_no) = 'blob' THEN lower(hex(key_no)) ELSE key_no END AS k
      FROM customer_rows WHERE typeof(image_url) = 'text' AND key_no IS NOT NULL) r
WHERE length(r.k) > 0 AND instr(r.image_url, r.k) > 0;

INSERT OR IGNORE INTO image_templates (prefix, suffix, keyed)
SELECT DISTINCT prefix, suffix, 1 FROM v8_keyed;

UPDATE customer_rows SET image_url = (
    SELECT t.template_id FROM image_templates t
    WHERE t.keyed = 1
      AND t.prefix = substr(customer_rows.image_url, 1,
                            instr(customer_rows.image_url, CASE WHEN typeof(customer_rows.key_no) = 'blob'
                                                                THEN lower(hex(customer_rows.key_no))
                                                                ELSE customer_rows.key_no END) - 1)
      AND t.prefix || CASE WHEN typeof(customer_rows.key_no) = 'blob' THEN lower(hex(customer_rows.key_no))
                           ELSE customer_rows.key_no END || t.suffix = customer_rows.image_url)
WHERE typeof(image_url) = 'text' AND key_no IS NOT NULL
  AND instr(image_url, CASE WHEN typeof(key_no) = 'blob' THEN lower(hex(key_no)) ELSE key_no END) > 0
  AND length(CASE WHEN typeof(key_no) = 'blob' THEN lower(hex(key_no)) ELSE key_no END) > 0;

-- Addresses without their row's KeyNo seen in the rows of more than one
-- company (a default picture), the most used first, up to the writer's limit
-- of 10,000 templates in all; any other stays text, as the writer keeps it.
INSERT OR IGNORE INTO image_templates (prefix, suffix, keyed)
SELECT image_url, '', 0 FROM customer_rows WHERE typeof(image_url) = 'text'
GROUP BY image_url HAVING COUNT(DISTINCT company_id) > 1 ORDER BY COUNT(*) DESC, image_url
LIMIT max(0, 10000 - (SELECT COUNT(*) FROM image_templates));

UPDATE customer_rows SET image_url = (
    SELECT t.template_id FROM image_templates t WHERE t.keyed = 0 AND t.prefix = customer_rows.image_url)
WHERE typeof(image_url) = 'text'
  AND image_url IN (SELECT prefix FROM image_templates WHERE keyed = 0);

DROP VIEW v8_keyed;

-- The staging table's rows are re-fetched pages about to be promoted: the
-- same rules, so that what is promoted reads the same.
UPDATE customer_rows_staging SET image_url = (
    SELECT t.template_id FROM image_templates t
    WHERE t.keyed = 1
      AND t.prefix || CASE WHEN typeof(customer_rows_staging.key_no) = 'blob'
                           THEN lower(hex(customer_rows_staging.key_no))
                           ELSE customer_rows_staging.key_no END || t.suffix = customer_rows_staging.image_url
    ORDER BY t.template_id LIMIT 1)
WHERE typeof(image_url) = 'text' AND key_no IS NOT NULL
  AND EXISTS (SELECT 1 FROM image_templates t
              WHERE t.keyed = 1
                AND t.prefix || CASE WHEN typeof(customer_rows_staging.key_no) = 'blob'
                                     THEN lower(hex(customer_rows_staging.key_no))
                                     ELSE customer_rows_staging.key_no END || t.suffix = customer_rows_staging.image_url);

-- The contract, decoded: the same columns as before; an integer address is
-- its template filled in.
DROP VIEW latest_customers;
DROP VIEW customers;

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
            WHEN typeof(r.image_url) = 'integer'
            THEN (SELECT t.prefix
                         || CASE WHEN t.keyed = 0 THEN ''
                                 WHEN typeof(r.key_no) = 'blob' THEN lower(hex(r.key_no))
                                 ELSE r.key_no END
                         || t.suffix
                  FROM image_templates t WHERE t.template_id = r.image_url)
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

CREATE VIEW latest_customers AS
SELECT c.*
FROM customers c
JOIN (SELECT search_key, MAX(query_year) AS query_year FROM customers GROUP BY search_key) l
  ON l.search_key = c.search_key AND l.query_year = c.query_year;
