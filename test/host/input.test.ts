import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HOST_PARAMETERS,
  type HostParameter,
  HostParameterError,
  hostEnvironment,
  maintenanceScript,
} from '../../lambda/host/script.js';
import type { HostParams } from '../../lambda/ports.js';
import { type HostFixture, runScript, startHostFixture } from './host-fixture.js';

const parameter = (env: string): HostParameter => {
  const found = HOST_PARAMETERS.find((p) => p.env === env);
  if (!found) throw new Error(`no parameter ${env}`);
  return found;
};

const refusal = (env: string) => ({
  registryJanitor: 1,
  status: 'failed',
  reason: `invalid ${env}: expected ${parameter(env).description}`,
  variable: env,
});

describe('the host script refuses bad input before doing anything', () => {
  let host: HostFixture;

  beforeAll(async () => {
    host = await startHostFixture();
  });

  afterAll(async () => {
    await host?.close();
  });

  it.each([
    ['RJ_ACTION', 'delete'],
    ['RJ_CONTAINER', 'registry; rm -rf /'],
    ['RJ_CONTAINER', '-registry'],
    ['RJ_CONTAINER', 'r'.repeat(129)],
    ['RJ_REGISTRY_BINARY', '/bin/../bin/sh'],
    ['RJ_REGISTRY_CONFIG', '../etc/passwd'],
    ['RJ_REGISTRY_CONFIG', '/etc/docker/registry/config.yml\n--delete-untagged'],
    ['RJ_STORAGE_ROOT', '/var/lib/registry $(reboot)'],
    ['RJ_GC_MODE', 'offline'],
    ['RJ_RESTART', 'yes'],
    ['RJ_REGISTRY_PORT', '65536'],
    ['RJ_REGISTRY_PORT', '080'],
    ['RJ_UPLOAD_WAIT_SECONDS', '-1'],
    ['RJ_UPLOAD_RECENT_MINUTES', '1e3'],
    ['RJ_POLL_SECONDS', '0'],
    ['RJ_READY_SECONDS', '100000'],
    ['RJ_LOCK_FILE', '/tmp/lock`id`'],
    ['RJ_LOG_DIR', 'logs'],
  ])('%s=%j: exit 2, a JSON summary naming the variable, and no docker call', async (env, value) => {
    const result = await host.run({ RJ_ACTION: 'collect', [env]: value });

    expect(result.exitCode).toBe(2);
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(JSON.parse(result.stdout)).toMatchObject(refusal(env));
    expect(await host.docker.calls()).toEqual([]);
  });
});

describe('hostEnvironment', () => {
  it('maps the parameters given to the RJ_* variables and leaves the rest to the script', () => {
    const env = hostEnvironment('collect', {
      container: 'registry-1',
      registryConfig: '/etc/distribution/config.yml',
      gcMode: 'stopped',
      restart: false,
      registryPort: 5001,
      pollSeconds: 1,
      uploadWaitSeconds: 0,
    });

    expect(env).toEqual({
      RJ_ACTION: 'collect',
      RJ_CONTAINER: 'registry-1',
      RJ_REGISTRY_CONFIG: '/etc/distribution/config.yml',
      RJ_GC_MODE: 'stopped',
      RJ_RESTART: 'false',
      RJ_REGISTRY_PORT: '5001',
      RJ_POLL_SECONDS: '1',
      RJ_UPLOAD_WAIT_SECONDS: '0',
    });
  });

  it('rejects what the script would reject, listing every problem with the accepted form', () => {
    const bad = {
      container: 'registry; rm -rf /',
      registryConfig: '../etc/passwd',
      registryPort: 70_000,
      pollSeconds: 0,
      uploadWaitSeconds: 1.5,
      gcMode: 'offline',
    } as unknown as HostParams;

    let error: unknown;
    try {
      hostEnvironment('collect', bad);
    } catch (err) {
      error = err;
    }

    expect(error).toBeInstanceOf(HostParameterError);
    expect((error as HostParameterError).problems).toEqual([
      `container (RJ_CONTAINER) "registry; rm -rf /": expected ${parameter('RJ_CONTAINER').description}`,
      `registryConfig (RJ_REGISTRY_CONFIG) "../etc/passwd": expected ${parameter('RJ_REGISTRY_CONFIG').description}`,
      `gcMode (RJ_GC_MODE) "offline": expected online or stopped`,
      `registryPort (RJ_REGISTRY_PORT) "70000": expected a port number from 1 to 65535`,
      `uploadWaitSeconds (RJ_UPLOAD_WAIT_SECONDS) "1.5": expected ${parameter('RJ_UPLOAD_WAIT_SECONDS').description}`,
      `pollSeconds (RJ_POLL_SECONDS) "0": expected ${parameter('RJ_POLL_SECONDS').description}`,
    ]);
    expect((error as Error).message).toContain('invalid host script parameters');
  });

  it('names the same defaults as the script', () => {
    const defaults = new Map(
      [...maintenanceScript().matchAll(/\$\{(RJ_[A-Z_]+):-([^}]*)\}/g)].map((m) => [m[1], m[2] || undefined]),
    );

    expect(new Set(defaults.keys())).toEqual(new Set(HOST_PARAMETERS.map((p) => p.env)));
    for (const p of HOST_PARAMETERS) expect([p.env, p.default]).toEqual([p.env, defaults.get(p.env)]);
  });
});

describe('the script and hostEnvironment accept exactly the same values', () => {
  let bin: string;

  beforeAll(async () => {
    bin = await mkdtemp(join(tmpdir(), 'registry-janitor-no-docker-'));
    await writeFile(join(bin, 'docker'), '#!/bin/sh\nexit 1\n');
    await chmod(join(bin, 'docker'), 0o755);
  });

  afterAll(async () => {
    await rm(bin, { recursive: true, force: true });
  });

  const units = [
    'a',
    'Z',
    '0',
    '1',
    '5',
    '6',
    '9',
    '.',
    '_',
    '-',
    '/',
    ' ',
    ';',
    '$',
    '\n',
    '*',
    '[',
    '!',
    'é',
    '"',
  ];
  const values = fc.oneof(
    fc.string({ unit: fc.constantFrom(...units), minLength: 1, maxLength: 10 }),
    fc.constantFrom(
      'inventory',
      'collect',
      'online',
      'true',
      '0',
      '00',
      '1',
      '999',
      '1000',
      '65535',
      '65536',
      '99999',
      '/',
      '/.',
      '/a..b',
      '/a/./b',
      `/${'p'.repeat(255)}`,
      `/${'p'.repeat(256)}`,
      'c'.repeat(128),
      'c'.repeat(129),
    ),
  );

  it('for every parameter', async () => {
    // An empty value is the script's default; hostEnvironment never sets one.
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...HOST_PARAMETERS), values, async (p, value) => {
        const env: NodeJS.ProcessEnv = {
          PATH: [bin, process.env.PATH].join(delimiter),
          RJ_ACTION: 'inventory',
          RJ_LOCK_FILE: join(bin, 'lock'),
          RJ_LOG_DIR: join(bin, 'logs'),
          [p.env]: value,
        };
        const result = await runScript(env);
        const accepted = p.pattern.test(value);
        expect({ value, exitCode: result.exitCode === 2 ? 2 : 'other' }).toEqual({
          value,
          exitCode: accepted ? 'other' : 2,
        });
        if (!accepted) expect(JSON.parse(result.stdout)).toMatchObject(refusal(p.env));
      }),
      { numRuns: 300 },
    );
  });
});
