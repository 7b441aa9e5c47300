/** The message of anything thrown, for reports: an Error's message, else its string form. */
export const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);
