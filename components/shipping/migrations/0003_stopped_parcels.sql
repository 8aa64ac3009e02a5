-- Every order shipping has heard of: by order.confirmed, or by orders asking to stop
-- its parcel (a customer's cancel) before that event arrived. Each decision about an
-- order's parcel (make it, hand it over, or stop it) writes the order's row first in
-- its transaction, so on PostgreSQL two decisions about one order take turns and the
-- second sees what the first did; SQLite runs them one at a time anyway.
-- stopped_at: when the parcel was stopped before shipping had made it (0: before this
-- column existed); such an order never gets a shipment, however late or often its
-- order.confirmed arrives.
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    stopped_at BIGINT
);

-- cancelled_orders held the orders cancelled before their order.confirmed arrived:
-- stopped parcels, in the terms above.
INSERT INTO orders (order_id, stopped_at) SELECT order_id, 0 FROM cancelled_orders;
DROP TABLE cancelled_orders;
