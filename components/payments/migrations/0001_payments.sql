-- The card vault: what a payment-method token stands for. SQL both SQLite and
-- PostgreSQL accept. Only this table ever holds a card number; everything else
-- (events, payments, answers) carries the token, brand and last four digits.
CREATE TABLE payment_methods (
    token TEXT PRIMARY KEY,
    card_number TEXT NOT NULL,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Every order payments has heard of. Each handler's transaction writes the order's
-- row first, so on PostgreSQL two handlers of one order (inventory.reserved and
-- order.cancelled arrive on different topics, possibly at once) take turns and each
-- sees what the other did. cancelled_at: when order.cancelled arrived; an order
-- cancelled before it was charged is never charged.
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    cancelled_at BIGINT
);

-- At most one payment per order (UNIQUE order_id): COMPLETED (charged), FAILED
-- (declined, with the reason) or REFUNDED (charged, then refunded because the order
-- was cancelled).
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    payment_method_token TEXT NOT NULL,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    provider_reference TEXT,
    refund_reference TEXT,
    created_at BIGINT NOT NULL,
    refunded_at BIGINT,
    CONSTRAINT payments_order_unique UNIQUE (order_id),
    CONSTRAINT payments_status_known CHECK (status IN ('COMPLETED', 'FAILED', 'REFUNDED'))
);
