-- A deep check is recorded as such, not recognised by the text of its
-- reason: the check planned next (companies) and each check done
-- (company_checks). Existing rows take what their reason text said.
ALTER TABLE companies ADD COLUMN next_check_deep INTEGER NOT NULL DEFAULT 0;
UPDATE companies SET next_check_deep = 1 WHERE next_check_reason = 'deep check';
ALTER TABLE company_checks ADD COLUMN deep INTEGER NOT NULL DEFAULT 0;
UPDATE company_checks SET deep = 1 WHERE reason = 'deep check';
