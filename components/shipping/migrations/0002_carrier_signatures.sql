-- The carrier webhook's accepted signatures (components/shipping/src/webhook.rs),
-- kept while their timestamp is within the five-minute window, so a signed request
-- is accepted once: a repeat, or the same signature aimed at another order, is a
-- replay and refused. signed_at: the request's own timestamp (Unix seconds).
CREATE TABLE carrier_signatures (
    signature TEXT PRIMARY KEY,
    signed_at BIGINT NOT NULL
);

CREATE INDEX carrier_signatures_by_time ON carrier_signatures (signed_at);
