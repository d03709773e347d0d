/**
 * The operator key of a deployment (the kill switch, src/domain/operator-instruction.ts): a
 * secp256k1 secret in a 0600 file that `floe up` and `floe init` create next to the cluster's
 * other files, whose x-only public key every signer pins (`operators`). It signs freeze and
 * unfreeze instructions on the operator's machine; the coordinator never sees it.
 */
import { fromHex, toHex } from '../crypto/hex.js';
import { generateIdentityKey, identityPublicKey } from '../crypto/identity.js';
import { loadOrCreateSecret } from './secret-file.js';

/** Its file name in a cluster's or a deployment bundle's directory. */
export const OPERATOR_KEY_FILE = 'operator.key';

/** The operator key file's public key (x-only hex), creating the file (0600) when missing. */
export function loadOrCreateOperatorKey(file: string): string {
  const hex = loadOrCreateSecret(file, 'operator key', () => toHex(generateIdentityKey()));
  const secret = fromHex(hex.trim().toLowerCase(), 'operator key', 32);
  try {
    return toHex(identityPublicKey(secret));
  } finally {
    secret.fill(0);
  }
}
