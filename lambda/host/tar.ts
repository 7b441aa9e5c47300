const BLOCK = 512;

/** A regular file of a tar archive; `body` is absent when the file was larger than the reader keeps. */
export interface TarEntry {
  readonly name: string;
  readonly size: number;
  readonly body?: Buffer;
}

export class TarFormatError extends Error {
  override readonly name = 'TarFormatError';
}

function text(header: Buffer, start: number, length: number): string {
  const field = header.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString('latin1');
}

function octal(header: Buffer, start: number, length: number, what: string): number {
  const digits = text(header, start, length).trim();
  if (!/^[0-7]{1,12}$/.test(digits)) throw new TarFormatError(`tar header with an invalid ${what}`);
  return Number.parseInt(digits, 8);
}

function checksumOf(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] as number);
  return sum;
}

const isZero = (block: Buffer) => block.every((byte) => byte === 0);

/**
 * Reads a tar archive as it arrives: ustar and GNU headers, each checked against its checksum; regular files
 * only. Archives written by several `tar` runs one after the other read as one: end-of-archive blocks are
 * skipped. A file larger than `maxBody` is passed over without being kept.
 */
export class TarReader {
  private buffered: Buffer = Buffer.alloc(0);
  private entry:
    | { name: string; size: number; keep: boolean; regular: boolean; remaining: number }
    | undefined;

  constructor(private readonly maxBody: number) {}

  *push(chunk: Buffer): Generator<TarEntry> {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    for (;;) {
      if (!this.entry) {
        if (this.buffered.length < BLOCK) return;
        const header = this.buffered.subarray(0, BLOCK);
        this.buffered = this.buffered.subarray(BLOCK);
        if (isZero(header)) continue;
        if (octal(header, 148, 8, 'checksum') !== checksumOf(header)) {
          throw new TarFormatError('tar header with a wrong checksum');
        }
        const type = String.fromCharCode(header[156] as number);
        const prefix = text(header, 257, 6) === 'ustar' ? text(header, 345, 155) : '';
        const name = text(header, 0, 100);
        const size = octal(header, 124, 12, 'size');
        const regular = type === '0' || type === '\0';
        this.entry = {
          name: prefix ? `${prefix}/${name}` : name,
          size,
          regular,
          keep: regular && size <= this.maxBody,
          remaining: Math.ceil(size / BLOCK) * BLOCK,
        };
      }
      const { name, size, keep, regular, remaining } = this.entry;
      if (!keep) {
        // Passed over as it arrives, so that a file too large to keep is never held whole.
        const skipped = Math.min(remaining, this.buffered.length);
        this.buffered = this.buffered.subarray(skipped);
        if (skipped < remaining) {
          this.entry = { ...this.entry, remaining: remaining - skipped };
          return;
        }
        this.entry = undefined;
        if (regular) yield { name, size };
        continue;
      }
      if (this.buffered.length < remaining) return;
      const body = Buffer.from(this.buffered.subarray(0, size));
      this.buffered = this.buffered.subarray(remaining);
      this.entry = undefined;
      yield { name, size, body };
    }
  }

  /** Throws when the archive stopped inside a header or a file. */
  end(): void {
    if (this.entry || this.buffered.length > 0) throw new TarFormatError('the tar archive is cut short');
  }
}
