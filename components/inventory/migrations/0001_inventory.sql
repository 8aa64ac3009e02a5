-- Stock per product. available: units that can be sold now, held for nobody.
-- reserved: units held for orders that are placed but neither shipped nor cancelled.
-- A unit is in one of the two, or gone (shipped): reserving moves it from available to
-- reserved, a cancellation moves it back, shipping takes it out of reserved.
CREATE TABLE stock (
    product_id BIGINT PRIMARY KEY,
    available BIGINT NOT NULL,
    reserved BIGINT NOT NULL,
    CONSTRAINT stock_available_not_negative CHECK (available >= 0),
    CONSTRAINT stock_reserved_not_negative CHECK (reserved >= 0)
);

-- Every order inventory has heard of, and where it stands: RESERVED (its units are
-- held), REJECTED (something was short, nothing held), RELEASED (cancelled after
-- reserving: units back in available), SOLD (shipped), CANCELLED (cancelled before its
-- order.placed arrived: a late order.placed must not reserve anything).
CREATE TABLE reservations (
    order_id TEXT PRIMARY KEY,
    status TEXT NOT NULL
);

-- What a reservation holds, per product, so a release or a sale moves exactly that.
CREATE TABLE reservation_items (
    order_id TEXT NOT NULL,
    product_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    CONSTRAINT reservation_items_pk PRIMARY KEY (order_id, product_id),
    CONSTRAINT reservation_items_order_fk FOREIGN KEY (order_id) REFERENCES reservations (order_id)
);
