-- Promotions as administrators published them; each goes out as promotion.published
-- from the transaction that records it.
CREATE TABLE promotions (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    published_by TEXT NOT NULL,
    published_at BIGINT NOT NULL
);
