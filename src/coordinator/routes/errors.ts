/** The error responses every route documents (application/problem+json). */
import { Problem } from '../../protocol/api.js';

export const errors = { 400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 429: Problem };
