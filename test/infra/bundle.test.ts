import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { ESM_REQUIRE_BANNER, REGISTRY_CA_FILE } from '../../infra/registry-janitor.js';
import { DEFAULT_STACK_NAME, RegistryJanitorStack } from '../../infra/registry-janitor-stack.js';
import { maintenanceScriptPath } from '../../lambda/host/script.js';
import { selfSignedCertificate } from '../support/tls.js';
import { cdkJsonContext, DEPLOYMENT_CONTEXT } from './stacks.js';

const run = promisify(execFile);
const outdirs: string[] = [];

afterAll(async () => {
  await Promise.all(outdirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** What a plain Node process prints for `code`, with only PATH and `env` set. */
async function node(code: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '--eval', code], {
    env: { PATH: process.env.PATH ?? '', ...env },
    timeout: 20_000,
  });
  return stdout.trim();
}

describe('the bundled function', () => {
  it('loads as ESM in a plain Node process, with the host script beside it, and reaches a registry signed by the private CA it ships', async () => {
    // Prepare: a registry endpoint whose certificate only the given CA file vouches for
    const outdir = await mkdtemp(join(tmpdir(), 'registry-janitor-cdk-'));
    outdirs.push(outdir);
    const tls = await selfSignedCertificate('registry.internal', 'IP:127.0.0.1');
    const caPem = join(outdir, 'registry-ca.pem');
    await writeFile(caPem, tls.cert);
    const server = createServer({ key: tls.key, cert: tls.cert }, (_req, res) => res.end('{}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const registry = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v2/`;

    try {
      // Act
      const app = new App({
        outdir,
        context: { ...cdkJsonContext(), ...DEPLOYMENT_CONTEXT, registryCaPem: caPem },
      });
      const stack = new RegistryJanitorStack(app, DEFAULT_STACK_NAME);
      app.synth();

      // Assess: the bundle and what ships beside it
      const functions = Template.fromStack(stack).findResources('AWS::Lambda::Function');
      const [fn] = Object.values(functions) as {
        Properties: {
          Code: { S3Key: string };
          Handler: string;
          Environment: { Variables: Record<string, string> };
        };
      }[];
      expect(fn?.Properties.Handler).toBe('index.handler');
      const assetDir = join(outdir, `asset.${fn?.Properties.Code.S3Key.replace(/\.zip$/, '')}`);
      const bundle = join(assetDir, 'index.mjs');
      expect((await readFile(bundle, 'utf8')).startsWith(ESM_REQUIRE_BANNER)).toBe(true);
      expect(await readFile(join(assetDir, 'maintenance.sh'), 'utf8')).toBe(
        await readFile(maintenanceScriptPath(), 'utf8'),
      );
      expect(await readFile(join(assetDir, REGISTRY_CA_FILE), 'utf8')).toBe(tls.cert);
      expect(
        await node(
          `const m = await import(${JSON.stringify(pathToFileURL(bundle).href)}); console.log(typeof m.handler);`,
        ),
      ).toBe('function');

      // Assess: with the function's NODE_EXTRA_CA_CERTS (its /var/task is the asset here) the registry is trusted
      const extraCaCerts = fn?.Properties.Environment.Variables.NODE_EXTRA_CA_CERTS ?? '';
      expect(extraCaCerts).toBe(`/var/task/${REGISTRY_CA_FILE}`);
      const status = `const r = await fetch(${JSON.stringify(registry)}).then((r) => String(r.status), (e) => e.cause?.code ?? e.message); console.log(r);`;
      expect(await node(status, { NODE_EXTRA_CA_CERTS: extraCaCerts.replace('/var/task', assetDir) })).toBe(
        '200',
      );
      expect(await node(status)).not.toBe('200');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 120_000);
});
