-- Checkouts sent with an Idempotency-Key: the key, per customer, with the order the
-- first such request placed and the answer it got. A repeat of the key gets that
-- answer and places nothing (src/idempotency.rs); the primary key lets only one of
-- two requests at once record it. Kept as long as the order.
CREATE TABLE idempotency_keys (
    user_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    order_id TEXT NOT NULL REFERENCES orders (id),
    -- The body of the 202, JSON: the order as it was placed.
    answer TEXT NOT NULL,
    CONSTRAINT idempotency_keys_pk PRIMARY KEY (user_id, idempotency_key)
);
