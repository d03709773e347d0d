/**
 * Entry point of a byzantine signer process (see ./byzantine-signer.ts): `floe signer` with
 * its handler table wrapped by the faults named in FLOE_TEST_SIGNER_FAULTS. Prints the same
 * `signer_started` line and stops on SIGINT/SIGTERM.
 */
import { loadSignerConfig } from '../../src/config/signer.js';
import { startSigner } from '../../src/signer/node.js';
import { byzantine, FAULTS_ENV, parseFaults } from './byzantine-signer.js';

const faults = parseFaults(process.env[FAULTS_ENV]);
const node = await startSigner(loadSignerConfig(undefined, process.env), process.env, {
  wrapHandlers: (h) => byzantine(h, faults),
});
process.stdout.write(
  `${JSON.stringify({ event: 'signer_started', url: node.url, identity: node.identityPub, faults: [...faults] })}\n`,
);
const stop = async () => {
  await node.close();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
