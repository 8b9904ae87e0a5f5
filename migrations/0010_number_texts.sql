-- Version 10: a number's text is not stored twice.
--
-- Answers give amounts and shares as text (`41377.22`, `57.10`); the tool
-- keeps the text as received (`sales_amount_text`, `sales_percent_text`)
-- and the number read from it (`sales_amount`, `sales_percent`). When the
-- text is exactly what `printf('%.2f', number)` prints (the usual case),
-- the text column is NULL and the view prints it; anything else (`未披露`,
-- `1,234.5`, `12.5%`, `-0.00`, a number of 10^13 or more) is stored as it
-- came. Before this version a NULL text always came with a NULL number, so
-- the two cases cannot be confused: `SELECT * FROM customers` reads back
-- value for value.

UPDATE customer_rows SET sales_amount_text = NULL
WHERE sales_amount IS NOT NULL AND abs(sales_amount) < 1e13 AND sales_amount_text <> '-0.00'
  AND sales_amount_text = printf('%.2f', sales_amount);
UPDATE customer_rows SET sales_percent_text = NULL
WHERE sales_percent IS NOT NULL AND abs(sales_percent) < 1e13 AND sales_percent_text <> '-0.00'
  AND sales_percent_text = printf('%.2f', sales_percent);
UPDATE customer_rows_staging SET sales_amount_text = NULL
WHERE sales_amount IS NOT NULL AND abs(sales_amount) < 1e13 AND sales_amount_text <> '-0.00'
  AND sales_amount_text = printf('%.2f', sales_amount);
UPDATE customer_rows_staging SET sales_percent_text = NULL
WHERE sales_percent IS NOT NULL AND abs(sales_percent) < 1e13 AND sales_percent_text <> '-0.00'
  AND sales_percent_text = printf('%.2f', sales_percent);

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
       CASE WHEN r.sales_amount_text IS NULL AND r.sales_amount IS NOT NULL
            THEN printf('%.2f', r.sales_amount) ELSE r.sales_amount_text END AS sales_amount_text,
       r.sales_percent AS sales_percent,
       CASE WHEN r.sales_percent_text IS NULL AND r.sales_percent IS NOT NULL
            THEN printf('%.2f', r.sales_percent) ELSE r.sales_percent_text END AS sales_percent_text,
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
