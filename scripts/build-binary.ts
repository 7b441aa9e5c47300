// Builds dist/registry-janitor: a Node single-executable application that runs on a host without Node. It is
// this machine's `node` with the command line's CommonJS bundle injected, so it needs the glibc that `node`
// needs (printed at the end).
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bundleCli, PROJECT_ROOT } from './build.js';

const run = promisify(execFile);

export const BINARY = join(PROJECT_ROOT, 'dist', 'registry-janitor');
/** The fuse Node looks for to know that a blob was injected (Node's documentation of postject). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** The newest glibc symbol version an ELF file links against, e.g. `2.28`; undefined when unknown. */
export async function requiredGlibc(file: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('objdump', ['-T', file], { maxBuffer: 64 * 1024 * 1024 });
    const versions = [...stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    versions.sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0) || (a[1] ?? 0) - (b[1] ?? 0));
    const newest = versions.at(-1);
    return newest ? newest.join('.') : undefined;
  } catch {
    return undefined;
  }
}

export async function buildBinary(output = BINARY): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'registry-janitor-sea-'));
  try {
    const script = join(work, 'registry-janitor.cjs');
    const blob = join(work, 'registry-janitor.blob');
    await bundleCli('cjs', script);
    // The code cache spares the executable compiling its 2 MB script at every start.
    const seaConfig = { main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true };
    await writeFile(join(work, 'sea-config.json'), JSON.stringify(seaConfig));
    await run(process.execPath, ['--experimental-sea-config', join(work, 'sea-config.json')]);
    await rm(output, { force: true });
    await copyFile(process.execPath, output);
    await chmod(output, 0o755);
    // Node's debug symbols are a seventh of its size and of no use to the command.
    await run('strip', [output]).catch(() => undefined);
    // postject's ELF library warns about every note section it cannot name: its output matters on failure only.
    await run(process.execPath, [
      join(PROJECT_ROOT, 'node_modules', 'postject', 'dist', 'cli.js'),
      output,
      'NODE_SEA_BLOB',
      blob,
      '--sentinel-fuse',
      SEA_FUSE,
    ]).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`postject could not inject the script:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  await buildBinary();
  const glibc = await requiredGlibc(BINARY);
  const { size } = await stat(BINARY);
  process.stdout.write(
    `${BINARY}: ${(size / 1024 / 1024).toFixed(0)} MiB, Node ${process.version}` +
      `${glibc ? `, needs glibc ${glibc} or later` : ''}\n`,
  );
}
