-- An order as checkout placed it. Prices, names and the address are a snapshot:
-- what the customer agreed to, whatever the catalog says later. The card itself
-- never reaches this database, only payments' token for it, its brand and last
-- four digits.
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    -- Why it was cancelled (CANCELLED only).
    reason TEXT,
    total_amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    -- The shipping address as JSON: {name, line1, line2?, city, postal_code, country}.
    shipping_address TEXT NOT NULL,
    payment_token TEXT NOT NULL,
    payment_brand TEXT NOT NULL,
    payment_last4 TEXT NOT NULL,
    -- PENDING, PAID, DECLINED, REFUNDED: what payments told us.
    payment_status TEXT NOT NULL,
    carrier TEXT,
    tracking_number TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX orders_by_user ON orders (user_id, created_at);

CREATE TABLE order_items (
    order_id TEXT NOT NULL REFERENCES orders (id),
    line BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_amount BIGINT NOT NULL,
    PRIMARY KEY (order_id, line)
);

-- Every status the order went through, numbered per order: the number is the
-- status stream's event id, so a reconnecting client resumes after the last one it saw.
CREATE TABLE order_history (
    order_id TEXT NOT NULL REFERENCES orders (id),
    position BIGINT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    at BIGINT NOT NULL,
    PRIMARY KEY (order_id, position)
);
