import { describe, expect, it } from 'vitest';
import { compileTagPattern, type TagPattern } from '../../lambda/domain/pattern.js';

const compiled = (source: string): TagPattern => {
  const reading = compileTagPattern(source);
  if (!reading.ok) throw new Error(reading.problem);
  return reading.pattern;
};
const problem = (source: string) => {
  const reading = compileTagPattern(source);
  return reading.ok ? 'compiled' : reading.problem;
};

describe('tag patterns', () => {
  it('answers a pattern that backtracks without end in JavaScript, for a long tag', () => {
    const nested = compiled('^(a+)+$');
    const versions = compiled('^v(\\d+\\.?)+$');

    expect(nested.test(`${'a'.repeat(60)}b`)).toBe(false);
    expect(nested.test('a'.repeat(60))).toBe(true);
    expect(versions.test(`v${'1'.repeat(5000)}x`)).toBe(false);
    expect(versions.test('v1.22.3')).toBe(true);
  });

  it.each([
    ['^latest$', 'latest', true],
    ['^latest$', 'latest-rc', false],
    ['^latest$', 'LATEST', false],
    ['latest', 'not-latest-yet', true],
    ['^v\\d+\\.\\d+\\.\\d+$', 'v1.22.3', true],
    ['^v\\d+\\.\\d+\\.\\d+$', 'v1.22', false],
    ['\\d', 'build-7', true],
    ['\\d', 'stable', false],
    ['^[[:alpha:]]+$', 'stable', true],
    ['^[[:alpha:]]+$', 'v1', false],
    ['(?i)^latest$', 'LATEST', true],
    ['(?i)^release-', 'Release-2024', true],
    ['^(?P<major>\\d+)\\.', '3.1', true],
  ])('%s on %s: %s', (source, tag, matches) => {
    expect(compiled(source).test(tag)).toBe(matches);
  });

  it.each([
    [
      '(?=x)',
      '"(?=x)" is not an RE2 regular expression: invalid or unsupported Perl syntax: `(?=` (RE2 has no lookahead or lookbehind)',
    ],
    [
      '^(?!dev)',
      '"^(?!dev)" is not an RE2 regular expression: invalid or unsupported Perl syntax: `(?!` (RE2 has no lookahead or lookbehind)',
    ],
    [
      '(?<=v)1',
      '"(?<=v)1" is not an RE2 regular expression: invalid named capture: `(?<=v)1` (RE2 has no lookahead or lookbehind)',
    ],
    [
      '(a)\\1',
      '"(a)\\\\1" is not an RE2 regular expression: invalid escape sequence: `\\1` (RE2 has no backreferences)',
    ],
    ['(', '"(" is not an RE2 regular expression: missing closing ): `(`'],
    ['a{1001}', '"a{1001}" is not an RE2 regular expression: invalid repeat count: `{1001}`'],
  ])('refuses %s, with the reason', (source, expected) => {
    expect(problem(source)).toBe(expected);
  });
});
