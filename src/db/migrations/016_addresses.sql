-- 016: Bitcoin addresses per passphrase (DESIGN §14) and the `address` token role.
--
-- passphrase_addresses: one row per (tenant, passphrase) that asked for an address. The
-- passphrase itself is never stored: `lookup_id` is HMAC-SHA256 under the coordinator's address
-- secret (address.key in its data dir) of the tenant and the passphrase, so a database without
-- that secret cannot be searched for a guessed passphrase. The row points at the key its
-- deterministic DKG made; the key's shares are on the signers, as for any key. A row whose key
-- failed is retried by the next request for the same passphrase (key_id moves to the new key).
--
-- address, output_key, internal_key: the BIP-86 output of the key once it is active (the
-- DKG key is already tweaked: output_key is its x-only key, internal_key its untweaked group
-- key), on `network`, the deployment's network when the address was made.

CREATE TABLE IF NOT EXISTS passphrase_addresses (
  tenant_id     TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  lookup_id     TEXT NOT NULL CHECK (lookup_id ~ '^[0-9a-f]{64}$'),
  key_id        TEXT NOT NULL,
  network       TEXT NOT NULL CHECK (network IN ('mainnet', 'testnet', 'signet', 'regtest')),
  address       TEXT NULL CHECK (address IS NULL OR length(address) BETWEEN 14 AND 90),
  output_key    TEXT NULL CHECK (output_key ~ '^[0-9a-f]{64}$'),
  internal_key  TEXT NULL CHECK (internal_key ~ '^0[23][0-9a-f]{64}$'),
  created_at    BIGINT NOT NULL,
  updated_at    BIGINT NOT NULL,
  CONSTRAINT passphrase_addresses_pkey PRIMARY KEY (tenant_id, lookup_id),
  CONSTRAINT passphrase_addresses_key_fkey FOREIGN KEY (tenant_id, key_id) REFERENCES keys (tenant_id, id),
  CONSTRAINT valid_address CHECK (
    (address IS NULL AND output_key IS NULL AND internal_key IS NULL)
    OR (address IS NOT NULL AND output_key IS NOT NULL AND internal_key IS NOT NULL))
);

CREATE INDEX IF NOT EXISTS passphrase_addresses_key_idx ON passphrase_addresses (tenant_id, key_id);

ALTER TABLE passphrase_addresses ENABLE ROW LEVEL SECURITY;
ALTER TABLE passphrase_addresses FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS floe_tenant_isolation ON passphrase_addresses;
CREATE POLICY floe_tenant_isolation ON passphrase_addresses
  USING (tenant_id = floe_current_tenant()) WITH CHECK (tenant_id = floe_current_tenant());
DROP POLICY IF EXISTS floe_owner_access ON passphrase_addresses;
CREATE POLICY floe_owner_access ON passphrase_addresses TO CURRENT_USER USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE ON passphrase_addresses TO floe_app;

-- The `address` role (src/domain/vocabulary.ts ROLES): creates and reads addresses, nothing else.
ALTER TABLE api_tokens DROP CONSTRAINT IF EXISTS api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
  CHECK (role IN ('admin', 'operator', 'requester', 'viewer', 'address'));
