-- Accounts. SQL both SQLite and PostgreSQL accept; ids are UUID text.
-- `email` is stored lowercased, so its UNIQUE constraint is case-insensitive;
-- `username` keeps the case it was registered with and is unique case-insensitively
-- through the index on LOWER(username).
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    phone TEXT,
    sms_opt_in BOOLEAN NOT NULL,
    marketing_opt_in BOOLEAN NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT users_email_unique UNIQUE (email),
    CONSTRAINT users_role_known CHECK (role IN ('customer', 'admin'))
);

CREATE UNIQUE INDEX users_username_unique ON users (LOWER(username));

-- Failed logins per account, for the "5 failures within a minute → 429" rule. Kept in
-- the database (not in the instance's memory), so every instance sees the same count.
CREATE TABLE login_failures (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    failed_at BIGINT NOT NULL
);

CREATE INDEX login_failures_by_user ON login_failures (user_id, failed_at);
