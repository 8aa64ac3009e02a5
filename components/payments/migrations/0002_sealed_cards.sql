-- Card numbers are sealed (AES-256-GCM) from now on: payment_methods.card_number holds
-- `sealed:v1:<base64>` (components/payments/src/vault.rs). SQL cannot encrypt, so the
-- numbers saved in clear text before this migration are sealed by payments the first
-- time it uses the vault, which then sets clear_numbers_sealed.
CREATE TABLE vault_upgrade (
    id BIGINT PRIMARY KEY,
    clear_numbers_sealed BOOLEAN NOT NULL
);

INSERT INTO vault_upgrade (id, clear_numbers_sealed) VALUES (1, FALSE);

-- Numbers are deleted once their refund window has passed, by the time they were saved.
CREATE INDEX payment_methods_by_age ON payment_methods (created_at);
