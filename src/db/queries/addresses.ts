/**
 * Addresses per passphrase (migration 016): which key a tenant's passphrase lookup id points at,
 * and that key's BIP-86 address once it is active. The passphrase is never here (see 016).
 */
import type { PassphraseAddressRecord } from '../../domain/records.js';
import type { Queryable } from '../connection.js';
import { camelize } from './util.js';

export type { PassphraseAddressRecord };

const toRow = (r: Record<string, unknown>) => camelize<PassphraseAddressRecord>(r);

export async function getPassphraseAddress(
  q: Queryable,
  lookupId: string,
): Promise<PassphraseAddressRecord | null> {
  const r = await q.query('SELECT * FROM passphrase_addresses WHERE lookup_id = $1', [lookupId]);
  return r.rows[0] ? toRow(r.rows[0]) : null;
}

/**
 * Claims a lookup id for a key: inserts the row unless one exists. Null when another request
 * claimed it first (its row is what counts; read it again).
 */
export async function claimPassphraseAddress(
  q: Queryable,
  a: { lookupId: string; keyId: string; network: string; createdAt: number },
): Promise<PassphraseAddressRecord | null> {
  const r = await q.query(
    `INSERT INTO passphrase_addresses (tenant_id, lookup_id, key_id, network, created_at, updated_at)
     VALUES (floe_current_tenant(), $1, $2, $3, $4, $4)
     ON CONFLICT (tenant_id, lookup_id) DO NOTHING
     RETURNING *`,
    [a.lookupId, a.keyId, a.network, a.createdAt],
  );
  return r.rows[0] ? toRow(r.rows[0]) : null;
}

/**
 * Points the lookup id at another key (the previous one failed), only if it still points at
 * `fromKeyId`: of two requests retrying at once, one wins. Null when it lost.
 */
export async function repointPassphraseAddress(
  q: Queryable,
  o: { lookupId: string; fromKeyId: string; keyId: string; network: string; at: number },
): Promise<PassphraseAddressRecord | null> {
  const r = await q.query(
    `UPDATE passphrase_addresses
        SET key_id = $3, network = $4, address = NULL, output_key = NULL, internal_key = NULL, updated_at = $5
      WHERE lookup_id = $1 AND key_id = $2
      RETURNING *`,
    [o.lookupId, o.fromKeyId, o.keyId, o.network, o.at],
  );
  return r.rows[0] ? toRow(r.rows[0]) : null;
}

/** Records the address of the (now active) key the lookup id points at. */
export async function setPassphraseAddressOutput(
  q: Queryable,
  o: {
    lookupId: string;
    keyId: string;
    address: string;
    outputKey: string;
    internalKey: string;
    at: number;
  },
): Promise<PassphraseAddressRecord | null> {
  const r = await q.query(
    `UPDATE passphrase_addresses
        SET address = $3, output_key = $4, internal_key = $5, updated_at = $6
      WHERE lookup_id = $1 AND key_id = $2
      RETURNING *`,
    [o.lookupId, o.keyId, o.address, o.outputKey, o.internalKey, o.at],
  );
  return r.rows[0] ? toRow(r.rows[0]) : null;
}
