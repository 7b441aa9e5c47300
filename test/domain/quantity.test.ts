import { describe, expect, it } from 'vitest';
import { TIMEOUT } from '../../lambda/cli-config.js';
import { KEEP_DAYS, KEEP_LAST, UNTAGGED_GRACE } from '../../lambda/domain/policy.js';
import { DAY_MS, formatDuration, type Quantity } from '../../lambda/domain/quantity.js';
import { CONCURRENCY } from '../../lambda/registry/client.js';

const read = (quantity: Quantity, value: unknown) => quantity.read(value);
const refused = (quantity: Quantity, value: unknown) => {
  const reading = quantity.read(value);
  return reading.ok ? `accepted as ${reading.value}` : reading.problem;
};

describe('whole numbers', () => {
  it.each([
    ['0', 0],
    ['10', 10],
    ['007', 7],
    [12, 12],
  ])('reads %j', (value, expected) => {
    expect(read(KEEP_LAST, value)).toEqual({ ok: true, value: expected });
  });

  it.each(['0x10', '1e3', '-1', ' 5', '5 ', '', '1.5', '+5', '1_000', 'ten', -1, 1.5, true, null])(
    'refuses %j, saying what it takes',
    (value) => {
      expect(refused(KEEP_LAST, value)).toBe(
        `expected a whole number ≥ 0 such as 10, got ${JSON.stringify(value)}`,
      );
    },
  );

  it('states its bounds', () => {
    expect([refused(CONCURRENCY, '0'), refused(CONCURRENCY, '65')]).toEqual([
      'expected a whole number from 1 to 64, got "0"',
      'expected a whole number from 1 to 64, got "65"',
    ]);
    expect(read(CONCURRENCY, '64')).toEqual({ ok: true, value: 64 });
  });
});

describe('durations', () => {
  it.each([
    ['0', 0],
    ['90s', 90_000],
    ['90m', 5_400_000],
    ['36h', 129_600_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['1w2d3h4m5s', 788_645_000],
  ])('reads %s', (text, ms) => {
    expect(read(UNTAGGED_GRACE, text)).toEqual({ ok: true, value: ms });
  });

  it.each([
    '',
    '7',
    ' 5m',
    '5m ',
    '-1d',
    '1y',
    'd',
    '1 d',
    '1.h',
    '0x10s',
    '1e3s',
    '30m1h',
    '1h1h',
    '1h 30m',
  ])('refuses %j', (text) => {
    expect(refused(UNTAGGED_GRACE, text)).toBe(
      `expected a duration such as 0, 90m, 2h or 7d, got ${JSON.stringify(text)}`,
    );
  });

  it('takes a timeout up to 24 days, which a timer can still hold', () => {
    expect(read(TIMEOUT, '24d')).toEqual({ ok: true, value: 24 * DAY_MS });
    expect(24 * DAY_MS).toBeLessThanOrEqual(2 ** 31 - 1);
    expect(read(TIMEOUT, '1h30m')).toEqual({ ok: true, value: 5_400_000 });
  });

  it.each(['25d', '50d', '0', '0s', '4w', '-1h', '1e3s', ''])(
    'refuses the timeout %j, stating the bounds',
    (text) => {
      expect(refused(TIMEOUT, text)).toBe(
        `expected a duration of more than 0 and at most 24d such as 30m or 2h, got ${JSON.stringify(text)}`,
      );
    },
  );

  it('reads keep-days as days, plain or with a unit', () => {
    const days = (value: unknown) => {
      const reading = KEEP_DAYS.read(value);
      return reading.ok ? reading.value / DAY_MS : reading.problem;
    };

    expect([days('30'), days('30d'), days(30), days('36h'), days('2w'), days('0'), days('1.5')]).toEqual([
      30, 30, 30, 1.5, 14, 0, 1.5,
    ]);
    for (const value of ['0x10', '1e3', '-1', ' 5', '', '30 d', -1]) {
      expect(days(value)).toBe(
        `expected a number of days or a duration such as 30, 36h or 2w, got ${JSON.stringify(value)}`,
      );
    }
  });

  it('writes the largest whole unit', () => {
    expect([formatDuration(9 * DAY_MS + 5), formatDuration(5_400_000), formatDuration(42_000)]).toEqual([
      '9d',
      '1h',
      '42s',
    ]);
  });
});
