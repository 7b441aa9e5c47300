// Bundles the command line into one file under dist/: ESM for the npm package (`npm run build`), CommonJS as
// the script of the single executable (`npm run build:binary`, which needs CommonJS).
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const PACKAGE_BUNDLE = join(PROJECT_ROOT, 'dist', 'registry-janitor.mjs');

/** Lets the CommonJS modules bundled into ESM (undici among them) call `require` for Node's own modules. */
const ESM_REQUIRE_SHIM =
  "import { createRequire } from 'node:module';const require = createRequire(import.meta.url);";

/**
 * The ESM build splits what only a command needs (the engine, undici, the AWS SDK) into chunks beside the
 * entry, under `chunks/`, loaded when a command runs: `--version` and help then compile a few hundred
 * kilobytes instead of two megabytes. The CommonJS build for the single executable is one file.
 */
export async function bundleCli(format: 'esm' | 'cjs', outfile: string): Promise<void> {
  const script = await readFile(join(PROJECT_ROOT, 'lambda', 'host', 'maintenance.sh'), 'utf8');
  await mkdir(dirname(outfile), { recursive: true });
  const entry = join(PROJECT_ROOT, 'lambda', 'main.ts');
  const output =
    format === 'esm'
      ? {
          entryPoints: { [basename(outfile, '.mjs')]: entry },
          outdir: dirname(outfile),
          splitting: true,
          chunkNames: 'chunks/[name]-[hash]',
          outExtension: { '.js': '.mjs' },
        }
      : { entryPoints: [entry], outfile };
  await build({
    ...output,
    bundle: true,
    platform: 'node',
    format,
    // The oldest Node the package supports; the single executable carries its own.
    target: 'node20.18',
    minify: true,
    legalComments: 'eof',
    define: { RJ_EMBEDDED_MAINTENANCE_SCRIPT: JSON.stringify(script) },
    banner: { js: format === 'esm' ? `#!/usr/bin/env node\n${ESM_REQUIRE_SHIM}` : '' },
    logLevel: 'warning',
    // The script's path is needed only when its text is not embedded, and here it always is.
    logOverride: { 'empty-import-meta': 'silent' },
  });
  await chmod(outfile, 0o755);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await bundleCli('esm', PACKAGE_BUNDLE);
}
