-- Version 3: remember the page size a year's checkpoint counts in, so a run
-- resumed with another --page-size starts that year over instead of mixing
-- page boundaries (which would skip or repeat rows).
ALTER TABLE company_years ADD COLUMN page_size INTEGER;
