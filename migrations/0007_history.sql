-- Version 7: what each company's history says about when its data changes,
-- for the revisit schedule (docs/design.md §4).
--
-- `company_periods`: one row per company and report period it has disclosed
-- customers for ('2023' the annual report of 2023, '2023-06' its half-year
-- report), with the check that first stored a row of it. The period appeared
-- at the vendor some time in (not_before, first_seen_at]; not_before is NULL
-- when the period was already there at the company's first fetch (or before
-- this table existed), so first_seen_at says nothing about its publication.
CREATE TABLE company_periods (
    company_id INTEGER NOT NULL,
    period TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    not_before TEXT,
    PRIMARY KEY (company_id, period)
) WITHOUT ROWID;

-- `company_checks`: every completed check of a company (a fetch cycle that
-- ended done or no_result) and what it found: 'first' (the first fetch),
-- 'changed' (rows were stored, or a period is new), 'unchanged', 'deep' (a deep
-- check re-paged the latest years whatever page 1 said), or 'no_result'.
CREATE TABLE company_checks (
    company_id INTEGER NOT NULL,
    checked_at TEXT NOT NULL,
    run_id INTEGER,
    outcome TEXT NOT NULL,
    -- Why the check was due: the schedule's reason ('usual date of 2025',
    -- 'staleness bound', '--refresh-after 7d', …); NULL for a first fetch.
    reason TEXT
);
CREATE INDEX company_checks_by_company ON company_checks (company_id, checked_at);

-- What the files from before knew: each stored period, seen at the company's
-- last fetch, and that fetch as the one check known.
INSERT OR IGNORE INTO company_periods (company_id, period, first_seen_at, not_before)
SELECT DISTINCT r.company_id,
       CASE WHEN typeof(r.year) = 'text' THEN r.year ELSE r.query_year END,
       co.fetched_at, NULL
FROM customer_rows r JOIN companies co ON co.company_id = r.company_id
WHERE co.fetched_at IS NOT NULL AND r.query_year IS NOT NULL;

INSERT INTO company_checks (company_id, checked_at, run_id, outcome)
SELECT company_id, fetched_at, last_run_id, CASE WHEN state = 'no_result' THEN 'no_result' ELSE 'first' END
FROM companies
WHERE fetched_at IS NOT NULL AND state IN ('done', 'no_result') AND company_id IS NOT NULL;

-- The revisit schedule's verdict after each check: when the company is asked
-- again and why ('usual date of 2025', 'staleness bound', 'deep check', …),
-- and when it was last re-paged by a deep check.
ALTER TABLE companies ADD COLUMN next_check_at TEXT;
ALTER TABLE companies ADD COLUMN next_check_reason TEXT;
ALTER TABLE companies ADD COLUMN deep_checked_at TEXT;
