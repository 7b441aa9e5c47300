import { RE2JS, RE2JSException, RE2JSSyntaxException } from 're2js';

// Tag patterns come from people and tags from anyone who can push, so they run on RE2, whose matching time
// grows linearly with the tag: JavaScript's backtracking RegExp can take years on `^(a+)+$` and a long tag.

/** A compiled tag pattern: RE2 syntax, matching anywhere in the tag unless anchored. */
export interface TagPattern {
  readonly source: string;
  test(tag: string): boolean;
}

export type PatternReading =
  | { readonly ok: true; readonly pattern: TagPattern }
  | { readonly ok: false; readonly problem: string };

const HINTS: readonly (readonly [RegExp, string])[] = [
  [/^\(\?<?[=!]/, 'RE2 has no lookahead or lookbehind'],
  [/^\\[1-9]/, 'RE2 has no backreferences'],
];

function reason(error: RE2JSException): string {
  if (!(error instanceof RE2JSSyntaxException)) return error.message;
  const fragment = error.getPattern() ?? '';
  const hint = HINTS.find(([form]) => form.test(fragment))?.[1];
  return `${error.getDescription()}: \`${fragment}\`${hint ? ` (${hint})` : ''}`;
}

/** Compiles a tag pattern, or says why RE2 cannot. */
export function compileTagPattern(source: string): PatternReading {
  try {
    const compiled = RE2JS.compile(source);
    return { ok: true, pattern: { source, test: (tag) => compiled.test(tag) } };
  } catch (error) {
    if (!(error instanceof RE2JSException)) throw error;
    return {
      ok: false,
      problem: `${JSON.stringify(source)} is not an RE2 regular expression: ${reason(error)}`,
    };
  }
}
