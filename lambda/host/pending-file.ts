import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../error-message.js';
import { type PendingCollection, type PendingCollections, parsePendingCollection } from '../ports.js';

/** The record of an unfinished collection could not be read or written; the message names the file. */
export class PendingFileError extends Error {
  override readonly name = 'PendingFileError';
  readonly code = 'RJ_PENDING_FILE';
}

/** The file name of a registry's record: its origin with every character outside `[A-Za-z0-9.-]` as `_`. */
export const pendingFileName = (registry: string): string =>
  `pending-${registry.replace(/[^A-Za-z0-9.-]/g, '_')}.json`;

/** A collection the command line left running, one JSON file per registry in its state folder. */
export class PendingCollectionFile implements PendingCollections {
  readonly path: string;

  constructor(
    private readonly stateDir: string,
    private readonly registry: string,
  ) {
    this.path = join(stateDir, pendingFileName(registry));
  }

  async read(): Promise<PendingCollection | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new PendingFileError(`${this.path} could not be read (${errorMessage(error)})`, { cause: error });
    }
    const parsed = parsePendingCollection(text, this.path);
    if ('problem' in parsed) throw new PendingFileError(parsed.problem);
    // Names that map to the same file: the record is another registry's, and left alone.
    return parsed.registry === this.registry ? parsed : undefined;
  }

  async write(record: PendingCollection | undefined): Promise<void> {
    try {
      if (record === undefined) {
        await rm(this.path, { force: true });
        return;
      }
      await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
      // Written whole, then renamed into place: a reader sees the old record or the new one, never half.
      const temporary = `${this.path}.${randomUUID()}.tmp`;
      try {
        await writeFile(temporary, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
        await rename(temporary, this.path);
      } catch (error) {
        await rm(temporary, { force: true });
        throw error;
      }
    } catch (error) {
      throw new PendingFileError(
        `${this.path} could not be ${record === undefined ? 'removed' : 'written'} (${errorMessage(error)}); give a folder you may write to with --state-dir`,
        { cause: error },
      );
    }
  }
}
