export * from './envelope.js';
export * from './errors.js';
export * from './exchange.js';
export * from './messages/index.js';
export * from './replay.js';
export * from './schema.js';
export * from './transcript.js';
