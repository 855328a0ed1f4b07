-- Leads created by a test call (a number typed on the Test call page that was not a
-- lead yet). "Select all" scheduling leaves them out; importing the number makes it
-- an ordinary lead.
ALTER TABLE leads ADD COLUMN test_only INTEGER NOT NULL DEFAULT 0;
