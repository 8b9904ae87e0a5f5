-- Version 15: who sells to a customer, newest period first, from the index.
--
-- The reverse indexes hold the period after the validity, so "who sells to
-- X, the latest period first" reads X's current versions in period order
-- and stops once it has the rows asked for, instead of sorting every one of
-- them (a customer disclosed by thousands of companies took half a second).
-- `customer_reach` reads only `disclosure_by_customer`.

DROP INDEX IF EXISTS disclosure_by_customer;
DROP INDEX IF EXISTS disclosure_by_name;
CREATE INDEX disclosure_by_customer ON disclosure(customer_id, valid_to, period, company_id) WHERE customer_id IS NOT NULL;
CREATE INDEX disclosure_by_name ON disclosure(name_id, valid_to, period);
