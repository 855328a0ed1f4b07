-- 0002: the claim's due-lead queries filter on status and order by next_call_at;
-- this index serves both without scanning every scheduled lead (the partial index of
-- 0001 was not chosen by the planner at 1,000,000 scheduled leads).
DROP INDEX IF EXISTS leads_due;
CREATE INDEX leads_status_due ON leads(status, next_call_at, id) WHERE next_call_at IS NOT NULL;
