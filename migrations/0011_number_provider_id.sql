-- 0011: a caller number's id at the provider (Twilio `PN…` sid, Telnyx phone
-- number id, Vapi `phoneNumberId`), set when the number is imported from the
-- provider account. Vapi dials by this id, not by the E.164 number.
ALTER TABLE caller_numbers ADD COLUMN provider_id TEXT;
