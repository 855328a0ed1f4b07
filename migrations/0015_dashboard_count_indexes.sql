-- Counts every dashboard page shows, kept cheap with a million scheduled leads
-- (issue 6 load test): a campaign's queued leads and the leads waiting for a
-- local caller ID were full scans of the scheduled leads (~130 ms each at 1M).
CREATE INDEX leads_scheduled_campaign ON leads(campaign_id) WHERE status = 'scheduled';
CREATE INDEX leads_waiting_local ON leads(id) WHERE status = 'scheduled' AND wait_reason = 'no_local_number';
