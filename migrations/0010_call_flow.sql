-- 0010: what happened inside an answered call (issue 5, the Twilio call flow).
--
--   digits            the key the person pressed in the message's Gather ("1", "2", …)
--   price, price_unit what the provider charged, as reported on the final callback
--                     (Twilio `Price` is a negative decimal string, `PriceUnit` e.g. USD)
--   transfer_seconds  how long the agent leg of a "press 1" transfer lasted
--                     (Twilio `DialCallDuration`)
-- `answered_by` and `transfer_result` already exist (0001, 0008).
ALTER TABLE attempts ADD COLUMN digits TEXT;
ALTER TABLE attempts ADD COLUMN price TEXT;
ALTER TABLE attempts ADD COLUMN price_unit TEXT;
ALTER TABLE attempts ADD COLUMN transfer_seconds INTEGER;
