export {
  availableBackends,
  BACKEND_ENV,
  BACKEND_NAMES,
  type BackendInfo,
  type BackendName,
  backendInfo,
  type CurveBackend,
  cryptoBackend,
  loadBackend,
  useBackend,
  withBackend,
} from './backend.js';
export * from './bech32.js';
export * from './box.js';
export * from './complaint.js';
export * from './dealer.js';
export * from './dkg.js';
export * from './dleq.js';
export * from './encoding.js';
export * from './errors.js';
export { SUITE_NAME } from './frost.js';
export * from './group.js';
export * from './hash.js';
export * from './hex.js';
export * from './identifier.js';
export * from './identity.js';
export * from './signing.js';
export * from './tweak.js';
export type * from './types.js';
