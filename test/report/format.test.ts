import { describe, expect, it } from 'vitest';
import { fitText, shorten, table, wrapText } from '../../lambda/report/format.js';

describe('fitting output to a terminal', () => {
  it('wraps at spaces, keeps aligned columns and a size with its unit', () => {
    expect(wrapText('web/frontend      latest pushed 15 times', 30)).toEqual([
      'web/frontend      latest',
      'pushed 15 times',
    ]);
    expect(wrapText('Reclaimed: 2.56 MiB (2683540 bytes) measured', 17)).toEqual([
      'Reclaimed:',
      '2.56 MiB',
      '(2683540 bytes)',
      'measured',
    ]);
  });

  it('indents the lines a long line wraps into under it', () => {
    expect(fitText('  warning: a b c d e f g h i j k l m n o p q r s t u v w x y z', 40)).toBe(
      '  warning: a b c d e f g h i j k l m n\n    o p q r s t u v w x y z',
    );
  });

  it('shortens the first column and wraps the last beneath itself', () => {
    const rows = [
      ['  TAG', 'DIGEST', 'DECISION'],
      [
        `  release-${'x'.repeat(60)}-final`,
        '0123456789ab',
        'will delete: stale: pushed 30d ago, not among 3 most recent',
      ],
    ];

    const lines = table(rows, 80);

    expect(lines.every((line) => line.length <= 80)).toBe(true);
    expect(lines[1]).toMatch(/^ {2}release-x+…x+-final {2}0123456789ab {2}will delete:/);
    expect(lines[2]?.trim()).toBe('ago, not among 3 most recent');
    expect(lines[2]?.indexOf('ago')).toBe(lines[1]?.indexOf('will delete'));
    expect(shorten('abcdefghij', 5)).toBe('ab…ij');
  });
});
