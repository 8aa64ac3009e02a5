-- One shipment per confirmed order (UNIQUE order_id). SQL both SQLite and PostgreSQL
-- accept. status only moves forward: AWAITING_PICKUP (dispatch on_pickup only) ->
-- SHIPPED (handed to the carrier) -> OUT_FOR_DELIVERY -> DELIVERED, reported by the
-- carrier's webhook; or AWAITING_PICKUP -> CANCELLED with its order.
-- shipping_address and items are the order's, as JSON text, kept as they were given.
CREATE TABLE shipments (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    carrier TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    status TEXT NOT NULL,
    shipping_address TEXT NOT NULL,
    items TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT shipments_order_unique UNIQUE (order_id),
    CONSTRAINT shipments_tracking_unique UNIQUE (tracking_number),
    CONSTRAINT shipments_status_known CHECK (status IN ('AWAITING_PICKUP', 'SHIPPED', 'OUT_FOR_DELIVERY', 'DELIVERED', 'CANCELLED'))
);

-- The shipment's tracking history, in the order it happened (seq from 1).
CREATE TABLE tracking_events (
    shipment_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    status TEXT NOT NULL,
    description TEXT NOT NULL,
    at BIGINT NOT NULL,
    CONSTRAINT tracking_events_pk PRIMARY KEY (shipment_id, seq),
    CONSTRAINT tracking_events_shipment_fk FOREIGN KEY (shipment_id) REFERENCES shipments (id)
);

-- Orders cancelled before their order.confirmed arrived (another topic, so it may
-- come later): such an order gets no shipment.
CREATE TABLE cancelled_orders (
    order_id TEXT PRIMARY KEY
);
