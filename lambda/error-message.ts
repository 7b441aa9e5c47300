/** The stable `code` of anything thrown (this project's errors, Node's, undici's), when it has one. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}

/** The message of anything thrown, for reports: an Error's message, else its string form. */
export const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/** Errors of this project carry a stable `code` and a message that says what to fix; others get their name. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return errorCode(error)?.startsWith('RJ_') ? error.message : `${error.name}: ${error.message}`;
}
