// The numbers and durations a person types or a policy holds. Text is decimal digits only: no sign, exponent,
// hexadecimal, separator or surrounding space, so "0x10", "1e3", "-1" and " 5" are refused, not reinterpreted.

const UNIT_MS = {
  w: 604_800_000,
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1000,
} as const;

export type DurationUnit = keyof typeof UNIT_MS;

export const DAY_MS = UNIT_MS.d;

const UNIT_NAMES: Record<DurationUnit, string> = {
  w: 'weeks',
  d: 'days',
  h: 'hours',
  m: 'minutes',
  s: 'seconds',
};

const DECIMAL = '\\d+(?:\\.\\d+)?';
const WHOLE_TEXT = /^\d+$/;
const DECIMAL_TEXT = new RegExp(`^${DECIMAL}$`);
const UNITS = Object.keys(UNIT_MS) as DurationUnit[];
/** `0`, or amounts with units from the largest to the smallest, each at most once: `90m`, `1h30m`, `1.5h`. */
const DURATION_BODY = `0|(?!$)${UNITS.map((unit) => `(?:${DECIMAL}${unit})?`).join('')}`;
const DURATION_TEXT = new RegExp(`^(?:${DURATION_BODY})$`);
const DURATION_PART = new RegExp(`(${DECIMAL})([${UNITS.join('')}])`, 'g');

export type Reading =
  | { readonly ok: true; readonly value: number }
  | { readonly ok: false; readonly problem: string };

/** A kind of value a field accepts, and how to read it from text (a flag, a variable) or a JSON number. */
export interface Quantity {
  /** What is accepted, in words: `a whole number from 1 to 64`. */
  readonly expected: string;
  /** The accepted text, as an anchored regular expression (for JSON Schema). */
  readonly pattern: string;
  read(value: unknown): Reading;
  /** The problem with a value this field does not take: `expected …, got "25d"`. */
  refuse(value: unknown): string;
}

/** Milliseconds → the largest whole unit that fits: `9d`, `5h`, `42m`, `12s`. */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  for (const unit of ['d', 'h', 'm'] as const) {
    if (abs >= UNIT_MS[unit]) return `${Math.floor(abs / UNIT_MS[unit])}${unit}`;
  }
  return `${Math.floor(abs / 1000)}s`;
}

/** A value as an error message quotes it: JSON, or `nothing`. */
export function shown(value: unknown): string {
  return value === undefined ? 'nothing' : (JSON.stringify(value) ?? String(value));
}

function quantity(
  expected: string,
  pattern: string,
  value: (input: unknown) => number | undefined,
): Quantity {
  const refuse = (input: unknown) => `expected ${expected}, got ${shown(input)}`;
  return {
    expected,
    pattern,
    refuse,
    read(input) {
      const result = value(input);
      return result === undefined ? { ok: false, problem: refuse(input) } : { ok: true, value: result };
    },
  };
}

function inRange(value: number, min: number, max: number): number | undefined {
  return Number.isFinite(value) && value >= min && value <= max ? value : undefined;
}

function range(min: number, max: number | undefined): string {
  return max === undefined ? `≥ ${min}` : `from ${min} to ${max}`;
}

function alternatives(words: readonly string[]): string {
  return words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words.at(-1)}` : (words[0] ?? '');
}

interface NumberRange {
  readonly min?: number;
  readonly max?: number;
  readonly example?: string;
}

/** A whole number, e.g. `wholeNumber({ min: 1, max: 64 })`: text of digits, or a JSON integer. */
export function wholeNumber({ min = 0, max, example }: NumberRange = {}): Quantity {
  const limit = max ?? Number.MAX_SAFE_INTEGER;
  return quantity(
    `a whole number ${range(min, max)}${example ? ` such as ${example}` : ''}`,
    WHOLE_TEXT.source,
    (input) => {
      if (typeof input === 'string')
        return WHOLE_TEXT.test(input) ? inRange(Number(input), min, limit) : undefined;
      return typeof input === 'number' && Number.isInteger(input) ? inRange(input, min, limit) : undefined;
    },
  );
}

/** A number that may have a fraction: `85`, `12.5`. */
export function decimalNumber({ min = 0, max, example }: NumberRange = {}): Quantity {
  const limit = max ?? Number.MAX_VALUE;
  return quantity(
    `a number ${range(min, max)}${example ? ` such as ${example}` : ''}`,
    DECIMAL_TEXT.source,
    (input) => {
      if (typeof input === 'string')
        return DECIMAL_TEXT.test(input) ? inRange(Number(input), min, limit) : undefined;
      return typeof input === 'number' ? inRange(input, min, limit) : undefined;
    },
  );
}

interface DurationSpec {
  /** The unit of a plain number (`--keep-days 30`); without one, the only plain number is 0. */
  readonly unit?: DurationUnit;
  /** 0 is refused. */
  readonly positive?: boolean;
  /** The shortest accepted, in milliseconds. */
  readonly min?: number;
  /** The longest accepted, in milliseconds. */
  readonly max?: number;
  readonly examples: readonly string[];
}

function durationMs(text: string): number {
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART))
    ms += Number(amount) * UNIT_MS[unit as DurationUnit];
  return Math.round(ms);
}

/**
 * A duration, read as milliseconds: `0`, `90s`, `90m`, `36h`, `7d`, `2w`, `1h30m`; with a unit, a plain
 * number too (text or JSON).
 */
export function duration({ unit, positive = false, min = 0, max, examples }: DurationSpec): Quantity {
  const what = unit ? `a number of ${UNIT_NAMES[unit]} or a duration` : 'a duration';
  const lower = positive ? 'more than 0' : min > 0 ? `at least ${formatDuration(min)}` : undefined;
  const upper = max !== undefined ? `at most ${formatDuration(max)}` : undefined;
  const bounds = lower || upper ? ` of ${[lower, upper].filter(Boolean).join(' and ')}` : '';
  const pattern = unit ? `^(?:${DECIMAL}|${DURATION_BODY})$` : DURATION_TEXT.source;
  const limit = max ?? Number.MAX_SAFE_INTEGER;
  return quantity(`${what}${bounds} such as ${alternatives(examples)}`, pattern, (input) => {
    let ms: number | undefined;
    if (typeof input === 'number')
      ms = unit ? Math.round(input * UNIT_MS[unit]) : input === 0 ? 0 : undefined;
    else if (typeof input === 'string') {
      if (unit && DECIMAL_TEXT.test(input)) ms = Math.round(Number(input) * UNIT_MS[unit]);
      else if (DURATION_TEXT.test(input)) ms = durationMs(input);
    }
    if (ms === undefined || (positive && ms === 0)) return undefined;
    return inRange(ms, min, limit);
  });
}
