// Text for a terminal: wrapped and shortened to fit its width, with nothing but strings in and out.

/** What a line may hold when nobody says: a terminal's classic width. */
export const DEFAULT_WIDTH = 80;
/** A wrapped column never gets narrower than this, even on a narrow terminal. */
const MIN_TEXT_WIDTH = 30;

/** A size and its unit, `2.51 MiB`, stays on one line. */
const SIZE_UNIT = /(\d) (B|KiB|MiB|GiB|TiB|PiB|bytes)\b/g;

/**
 * Splits text into lines of at most `width` characters at spaces, keeping runs of spaces inside a line (an
 * aligned column stays aligned) and a size with its unit; a longer word gets a line of its own.
 */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  // Each piece is a word with the spaces after it.
  for (const piece of text.replace(SIZE_UNIT, '$1\u0001$2').match(/\S+ */g) ?? []) {
    const word = piece.trimEnd();
    if (line && line.length + word.length > width) {
      lines.push(line.trimEnd());
      line = piece;
    } else line += piece;
  }
  if (line.trimEnd()) lines.push(line.trimEnd());
  return lines.map((l) => l.replaceAll('\u0001', ' '));
}

/** Shortens text to `width` characters by replacing its middle with `…`, keeping both ends readable. */
export function shorten(text: string, width: number): string {
  if (text.length <= width) return text;
  const head = Math.ceil((width - 1) / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (width - 1 - head))}`;
}

/** Wraps a line wider than `width`; its continuation lines are indented two more than it is. */
export function fitLine(line: string, width: number): string[] {
  if (line.length <= width) return [line];
  const indent = line.length - line.trimStart().length;
  const pieces = wrapText(line.trimStart(), Math.max(width - indent - 2, MIN_TEXT_WIDTH));
  return pieces.map((piece, index) => `${' '.repeat(index === 0 ? indent : indent + 2)}${piece}`);
}

/** Every line of a text fitted to `width`. */
export function fitText(text: string, width: number): string {
  return text
    .split('\n')
    .flatMap((line) => fitLine(line, width))
    .join('\n');
}

/**
 * Left-aligned columns, two spaces apart, within `width`: the first column is shortened with `…` when the
 * others would not fit, and the last one wraps beneath itself.
 */
export function table(rows: readonly (readonly string[])[], width = Number.POSITIVE_INFINITY): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, index) => {
      widths[index] = Math.max(widths[index] ?? 0, cell.length);
    });
  }
  const columns = widths.length;
  const fixed = (from: number) => widths.slice(from, columns - 1).reduce((sum, w) => sum + w + 2, 0);
  const firstMax = Math.max(12, width - fixed(1) - MIN_TEXT_WIDTH - 2);
  if (columns > 1 && (widths[0] ?? 0) > firstMax) widths[0] = firstMax;
  const lastStart = fixed(0);
  const lastWidth = Math.max(width - lastStart, MIN_TEXT_WIDTH);
  return rows.flatMap((row) => {
    const cells = row.map((cell, index) =>
      index === 0 && columns > 1 ? shorten(cell, widths[0] ?? cell.length) : cell,
    );
    const last = cells.at(-1) ?? '';
    const lead = cells
      .slice(0, -1)
      .map((cell, index) => cell.padEnd(widths[index] ?? 0))
      .join('  ');
    const pieces = columns > 1 && last.length > lastWidth ? wrapText(last, lastWidth) : [last];
    return pieces.map((piece, index) =>
      `${index === 0 ? lead : ' '.repeat(lead.length)}${cells.length > 1 ? '  ' : ''}${piece}`.trimEnd(),
    );
  });
}
