/** Bitcoin Taproot custody (DESIGN §12, §14): pure building blocks, one concept per module. */
export * from './address.js';
export * from './derive.js';
export * from './descriptor.js';
export * from './errors.js';
export * from './network.js';
export * from './policy.js';
export * from './psbt.js';
export * from './sighash.js';
