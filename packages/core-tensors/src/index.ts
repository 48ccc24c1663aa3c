export { CheckpointError, CodeReasonerError, ConfigValidationError } from './errors.js';
export type { CodeReasonerErrorOptions } from './errors.js';
