export * from './ceremony-state.js';
export * from './ids.js';
export * from './intent.js';
export type * from './records.js';
export * from './session-state.js';
export * from './vocabulary.js';
