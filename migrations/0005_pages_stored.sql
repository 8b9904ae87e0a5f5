-- Version 5: a company's pages may be fetched side by side and stored out
-- of order, so a checkpoint records which pages are stored, not only how
-- far: `pages_fetched` stays "pages 1..pages_fetched are stored", and
-- `pages_beyond` lists the stored pages after those (comma-separated; NULL
-- when there are none). A resumed run fetches exactly the pages missing.
ALTER TABLE company_years ADD COLUMN pages_beyond TEXT;
ALTER TABLE company_listings ADD COLUMN pages_beyond TEXT;
