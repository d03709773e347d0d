-- 026: the format checks on hex and identifier columns say the same without counted repetition.
-- Postgres's regular expressions build their automaton afresh at every match, and a bound like
-- {64} makes it 64 states: '^[0-9a-f]{64}$' cost ~10 µs per value on PGlite, the nonce
-- commitment's two of them ~36 µs and the session id's {16,128} ~25 µs, while the same test as
-- a length and '^[0-9a-f]+$' costs under 1 µs. Every INSERT and UPDATE of a row evaluates all
-- of its table's checks: about forty of them per signature (four session writes, seven audit
-- rows, the nonce commitments and their points), ~0.45 ms of the coordinator's time.
--
-- Each check keeps its name and accepts exactly the values it accepted before (the octet length
-- equals the character length for the ASCII the patterns allow; NULL still passes);
-- test/db/format-checks.test.ts holds every one against its earlier pattern. Existing rows are
-- checked again as each constraint is added: one scan of each table.

ALTER TABLE signing_sessions
  DROP CONSTRAINT signing_sessions_session_id_check,
  ADD CONSTRAINT signing_sessions_session_id_check CHECK (octet_length(session_id) BETWEEN 16 AND 128 AND session_id ~ '^[A-Za-z0-9_-]+$'),
  DROP CONSTRAINT signing_sessions_message_hash_check,
  ADD CONSTRAINT signing_sessions_message_hash_check CHECK (octet_length(message_hash) = 64 AND message_hash ~ '^[0-9a-f]+$'),
  DROP CONSTRAINT signing_sessions_final_signature_check,
  ADD CONSTRAINT signing_sessions_final_signature_check CHECK (octet_length(final_signature) = 128 AND final_signature ~ '^[0-9a-f]+$'),
  DROP CONSTRAINT valid_final_event_id,
  ADD CONSTRAINT valid_final_event_id CHECK (final_event_id IS NULL OR (octet_length(final_event_id) = 64 AND final_event_id ~ '^[0-9a-f]+$')),
  DROP CONSTRAINT valid_intent,
  ADD CONSTRAINT valid_intent CHECK (intent_type IN ('message', 'nostr_event', 'bitcoin_psbt') AND intent->>'type' = intent_type
    AND octet_length(intent_hash) = 64 AND intent_hash ~ '^[0-9a-f]+$');

ALTER TABLE audit_events
  DROP CONSTRAINT audit_events_chain_hex,
  ADD CONSTRAINT audit_events_chain_hex CHECK (octet_length(prev_hash) = 64 AND prev_hash ~ '^[0-9a-f]+$' AND octet_length(hash) = 64 AND hash ~ '^[0-9a-f]+$');

ALTER TABLE nonce_commitments
  DROP CONSTRAINT nonce_commitments_nonce_commitment_check,
  ADD CONSTRAINT nonce_commitments_nonce_commitment_check CHECK (octet_length(nonce_commitment) = 132 AND nonce_commitment ~ '^0[23][0-9a-f]+$'
    AND substr(nonce_commitment, 67, 2) IN ('02', '03'));

ALTER TABLE used_nonce_points
  DROP CONSTRAINT used_nonce_points_point_sha256_check,
  ADD CONSTRAINT used_nonce_points_point_sha256_check CHECK (octet_length(point_sha256) = 64 AND point_sha256 ~ '^[0-9a-f]+$');

ALTER TABLE tenants
  DROP CONSTRAINT tenants_id_check,
  ADD CONSTRAINT tenants_id_check CHECK (octet_length(id) BETWEEN 1 AND 64 AND id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$');

ALTER TABLE api_tokens
  DROP CONSTRAINT api_tokens_token_sha256_check,
  ADD CONSTRAINT api_tokens_token_sha256_check CHECK (octet_length(token_sha256) = 64 AND token_sha256 ~ '^[0-9a-f]+$');

ALTER TABLE refresh_tokens
  DROP CONSTRAINT refresh_tokens_token_sha256_check,
  ADD CONSTRAINT refresh_tokens_token_sha256_check CHECK (octet_length(token_sha256) = 64 AND token_sha256 ~ '^[0-9a-f]+$');

ALTER TABLE signer_nodes
  DROP CONSTRAINT signer_nodes_identity_pubkey_check,
  ADD CONSTRAINT signer_nodes_identity_pubkey_check CHECK (octet_length(identity_pubkey) = 64 AND identity_pubkey ~ '^[0-9a-f]+$');

ALTER TABLE keys
  DROP CONSTRAINT keys_group_public_key_check,
  ADD CONSTRAINT keys_group_public_key_check CHECK (octet_length(group_public_key) = 66 AND group_public_key ~ '^0[23][0-9a-f]+$'),
  DROP CONSTRAINT keys_x_only_public_key_check,
  ADD CONSTRAINT keys_x_only_public_key_check CHECK (octet_length(x_only_public_key) = 64 AND x_only_public_key ~ '^[0-9a-f]+$');

ALTER TABLE dkg_ceremonies
  DROP CONSTRAINT dkg_ceremonies_transcript_hash_check,
  ADD CONSTRAINT dkg_ceremonies_transcript_hash_check CHECK (octet_length(transcript_hash) = 64 AND transcript_hash ~ '^[0-9a-f]+$');

ALTER TABLE bunkers
  DROP CONSTRAINT bunkers_remote_signer_pubkey_check,
  ADD CONSTRAINT bunkers_remote_signer_pubkey_check CHECK (octet_length(remote_signer_pubkey) = 64 AND remote_signer_pubkey ~ '^[0-9a-f]+$'),
  DROP CONSTRAINT bunkers_seal_key_id_check,
  ADD CONSTRAINT bunkers_seal_key_id_check CHECK (octet_length(seal_key_id) = 16 AND seal_key_id ~ '^[0-9a-f]+$'),
  DROP CONSTRAINT bunkers_sealed_nonce_check,
  ADD CONSTRAINT bunkers_sealed_nonce_check CHECK (octet_length(sealed_nonce) = 24 AND sealed_nonce ~ '^[0-9a-f]+$'),
  DROP CONSTRAINT bunkers_sealed_secret_check,
  ADD CONSTRAINT bunkers_sealed_secret_check CHECK (octet_length(sealed_secret) = 96 AND sealed_secret ~ '^[0-9a-f]+$');

ALTER TABLE bunker_clients
  DROP CONSTRAINT bunker_clients_pubkey_check,
  ADD CONSTRAINT bunker_clients_pubkey_check CHECK (octet_length(pubkey) = 64 AND pubkey ~ '^[0-9a-f]+$');

ALTER TABLE bunker_secrets
  DROP CONSTRAINT bunker_secrets_secret_sha256_check,
  ADD CONSTRAINT bunker_secrets_secret_sha256_check CHECK (octet_length(secret_sha256) = 64 AND secret_sha256 ~ '^[0-9a-f]+$'),
  DROP CONSTRAINT bunker_secrets_used_by_check,
  ADD CONSTRAINT bunker_secrets_used_by_check CHECK (octet_length(used_by) = 64 AND used_by ~ '^[0-9a-f]+$');

ALTER TABLE bunker_approvals
  DROP CONSTRAINT bunker_approvals_approval_id_check,
  ADD CONSTRAINT bunker_approvals_approval_id_check CHECK (octet_length(approval_id) = 32 AND approval_id ~ '^[0-9a-f]+$'),
  DROP CONSTRAINT bunker_approvals_client_check,
  ADD CONSTRAINT bunker_approvals_client_check CHECK (octet_length(client) = 64 AND client ~ '^[0-9a-f]+$'),
  DROP CONSTRAINT bunker_approvals_method_check,
  ADD CONSTRAINT bunker_approvals_method_check CHECK (octet_length(method) BETWEEN 1 AND 32 AND method ~ '^[a-z0-9_]+$');

ALTER TABLE session_approvals
  DROP CONSTRAINT session_approvals_event_id_check,
  ADD CONSTRAINT session_approvals_event_id_check CHECK (octet_length(event_id) = 64 AND event_id ~ '^[0-9a-f]+$'),
  DROP CONSTRAINT session_approvals_steward_check,
  ADD CONSTRAINT session_approvals_steward_check CHECK (octet_length(steward) = 64 AND steward ~ '^[0-9a-f]+$');

ALTER TABLE passphrase_addresses
  DROP CONSTRAINT passphrase_addresses_internal_key_check,
  ADD CONSTRAINT passphrase_addresses_internal_key_check CHECK (octet_length(internal_key) = 66 AND internal_key ~ '^0[23][0-9a-f]+$'),
  DROP CONSTRAINT passphrase_addresses_lookup_id_check,
  ADD CONSTRAINT passphrase_addresses_lookup_id_check CHECK (octet_length(lookup_id) = 64 AND lookup_id ~ '^[0-9a-f]+$'),
  DROP CONSTRAINT passphrase_addresses_output_key_check,
  ADD CONSTRAINT passphrase_addresses_output_key_check CHECK (octet_length(output_key) = 64 AND output_key ~ '^[0-9a-f]+$');

ALTER TABLE key_repairs
  DROP CONSTRAINT key_repairs_new_identity_check,
  ADD CONSTRAINT key_repairs_new_identity_check CHECK (octet_length(new_identity) = 64 AND new_identity ~ '^[0-9a-f]+$'),
  DROP CONSTRAINT key_repairs_replaced_check,
  ADD CONSTRAINT key_repairs_replaced_check CHECK (octet_length(replaced) = 64 AND replaced ~ '^[0-9a-f]+$');
