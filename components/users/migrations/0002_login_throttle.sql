-- Login attempts, counted per account and client address and per client address
-- (components/users/src/throttle.rs). One row per scope, counted up by a single
-- atomic statement before the password is checked, so parallel guesses cannot all
-- read a count below the limit, as they could with login_failures (a row per
-- failure, counted before and recorded after the check), which this replaces.
DROP TABLE login_failures;

CREATE TABLE login_throttle (
    scope TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    attempts BIGINT NOT NULL
);

CREATE INDEX login_throttle_by_window ON login_throttle (window_start);
