-- The users this service can write to, kept from users' events (estore-shared
-- notify::directory); `as_of` is the occurred_at of the event that wrote the row
-- (RFC 3339 UTC, which sorts as text). Same table in sms's migrations.
CREATE TABLE contacts (
    user_id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    email TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    phone TEXT,
    sms_opt_in BOOLEAN NOT NULL,
    marketing_opt_in BOOLEAN NOT NULL,
    as_of TEXT NOT NULL
);

-- Every e-mail sent, refused or skipped (estore-shared notify::record). The unique
-- natural key is what sends each one once, however often its event arrives.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    template TEXT NOT NULL,
    reference TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    attempts BIGINT NOT NULL,
    provider_id TEXT,
    created_at_ms BIGINT NOT NULL,
    sent_at_ms BIGINT,
    CONSTRAINT notifications_once UNIQUE (template, reference, user_id),
    CONSTRAINT notifications_status_known CHECK (status IN ('PENDING', 'SENT', 'FAILED', 'SKIPPED'))
);

CREATE INDEX notifications_by_user ON notifications (user_id, created_at_ms);
CREATE INDEX notifications_by_time ON notifications (created_at_ms);
