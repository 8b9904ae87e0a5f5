-- Version 14: rows per report year, without sorting every row.
--
-- `report_years`: each report year (`query_year`), its current rows and the
-- companies that have them; the same numbers as
-- `SELECT query_year, COUNT(*), COUNT(DISTINCT search_key) FROM customers GROUP BY query_year`.
-- It reads the current versions' index in its own order (company, then
-- year), counting each company's year as it goes, and adds those counts up
-- per year: it sorts a row per company-year, not every row.

CREATE VIEW report_years AS
SELECT query_year, SUM(rows) AS rows, COUNT(*) AS companies
FROM (SELECT company_id, query_year, COUNT(*) AS rows
      FROM disclosure
      WHERE valid_to IS NULL
      GROUP BY company_id, query_year)
GROUP BY query_year;
