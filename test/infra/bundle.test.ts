import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { ESM_REQUIRE_BANNER } from '../../infra/registry-janitor.js';
import { DEFAULT_STACK_NAME, RegistryJanitorStack } from '../../infra/registry-janitor-stack.js';
import { maintenanceScriptPath } from '../../lambda/host/script.js';
import { cdkJsonContext } from './stacks.js';

const run = promisify(execFile);
const outdirs: string[] = [];

afterAll(async () => {
  await Promise.all(outdirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('the bundled function', () => {
  it('loads as ESM in a plain Node process, with the host script beside it', async () => {
    const outdir = await mkdtemp(join(tmpdir(), 'registry-janitor-cdk-'));
    outdirs.push(outdir);
    const app = new App({ outdir, context: cdkJsonContext() });
    const stack = new RegistryJanitorStack(app, DEFAULT_STACK_NAME);
    app.synth();

    const functions = Template.fromStack(stack).findResources('AWS::Lambda::Function');
    const [fn] = Object.values(functions) as { Properties: { Code: { S3Key: string }; Handler: string } }[];
    expect(fn?.Properties.Handler).toBe('index.handler');
    const assetDir = join(outdir, `asset.${fn?.Properties.Code.S3Key.replace(/\.zip$/, '')}`);
    const bundle = join(assetDir, 'index.mjs');
    expect((await readFile(bundle, 'utf8')).startsWith(ESM_REQUIRE_BANNER)).toBe(true);
    expect(await readFile(join(assetDir, 'maintenance.sh'), 'utf8')).toBe(
      await readFile(maintenanceScriptPath(), 'utf8'),
    );

    const { stdout } = await run(
      process.execPath,
      [
        '--input-type=module',
        '--eval',
        `const m = await import(${JSON.stringify(pathToFileURL(bundle).href)}); console.log(typeof m.handler);`,
      ],
      { env: { PATH: process.env.PATH ?? '' }, timeout: 20_000 },
    );
    expect(stdout.trim()).toBe('function');
  }, 30_000);
});
