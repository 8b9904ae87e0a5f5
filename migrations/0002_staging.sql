-- Version 2: a staging area so that re-fetching a year replaces its rows
-- atomically (docs/design.md §5). Pages of a multi-page year land here and move into
-- `customers` in the transaction that stores the year's last page, so a crash
-- half-way leaves the previous rows intact and analysts never see a mix.

CREATE TABLE customers_staging (
    search_key         TEXT NOT NULL,
    year               TEXT,
    query_year         TEXT NOT NULL,
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
    PRIMARY KEY (search_key, query_year, page_index, row_index)
) WITHOUT ROWID;
