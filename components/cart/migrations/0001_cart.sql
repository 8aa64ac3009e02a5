-- A customer's cart: one line per product, quantities added up.
CREATE TABLE cart_items (
    user_id TEXT NOT NULL,
    product_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    added_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, product_id)
);

-- What the cart knows of each product in a cart: fetched from catalog when first
-- added, kept current by product.updated and product.deleted.
CREATE TABLE products (
    product_id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    price_amount BIGINT NOT NULL,
    price_currency TEXT NOT NULL,
    active BOOLEAN NOT NULL
);
