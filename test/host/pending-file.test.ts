import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PendingCollectionFile, pendingFileName } from '../../lambda/host/pending-file.js';
import type { PendingCollection } from '../../lambda/ports.js';

const REGISTRY = 'https://registry.example.com:5000';
const RECORD: PendingCollection = {
  commandId: '0b5f2c1e-1111-4222-8333-444455556666',
  startedAt: '2026-11-26T18:26:05.000Z',
  requestId: 'unnamed',
  registry: REGISTRY,
  keptTags: [{ repository: 'web/app', tag: 'v1' }],
};

describe('PendingCollectionFile', () => {
  let dir: string;
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a record whole into a state folder it creates, reads it back, and forgets it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'janitor-state-'));
    const state = join(dir, 'state', 'registry-janitor');
    const store = new PendingCollectionFile(state, REGISTRY);

    const none = await store.read();
    await store.write(RECORD);
    const files = await readdir(state);
    const back = await store.read();
    await store.write(undefined);

    expect(none).toBeUndefined();
    expect(store.path).toBe(join(state, 'pending-https___registry.example.com_5000.json'));
    expect(files).toEqual([pendingFileName(REGISTRY)]);
    expect(back).toEqual(RECORD);
    expect(await store.read()).toBeUndefined();
    expect(await readdir(state)).toEqual([]);
  });

  it('refuses a record that is not one, naming the file, the field and the fix', async () => {
    dir = await mkdtemp(join(tmpdir(), 'janitor-state-'));
    const store = new PendingCollectionFile(dir, REGISTRY);
    await writeFile(store.path, JSON.stringify({ ...RECORD, commandId: 'run-1' }));

    await expect(store.read()).rejects.toThrow(
      `${store.path} is not a pending-collection record (commandId: Invalid string: must match pattern /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/): delete it, and verify the registry with registry-janitor verify`,
    );
  });

  it('says which file it could not write, and how to give another folder', async () => {
    dir = await mkdtemp(join(tmpdir(), 'janitor-state-'));
    const readOnly = join(dir, 'read-only');
    await writeFile(readOnly, 'a file, not a folder');
    await chmod(readOnly, 0o400);
    const store = new PendingCollectionFile(join(readOnly, 'state'), REGISTRY);

    await expect(store.write(RECORD)).rejects.toThrow(
      new RegExp(
        `^${store.path.replaceAll('.', '\\.')} could not be written \\(.+\\); give a folder you may write to with --state-dir$`,
      ),
    );
    expect(await readFile(readOnly, 'utf8')).toBe('a file, not a folder');
  });
});
