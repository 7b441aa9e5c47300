import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterEach, describe, expect, it } from 'vitest';
import { ENV } from '../../lambda/aws/function-config.js';
import { METRICS } from '../../lambda/aws/metrics.js';
import type { FunctionReport } from '../../lambda/report/function.js';
import { headManifest, type PushedImage } from '../support/images.js';
import { type RunSecrets, secretLeaks } from '../support/leaks.js';
import { tagLinkPath } from '../support/storage.js';
import { lambdaContext, sampleEvent } from './events.js';
import { type FixtureOptions, type HandlerFixture, SECRET, startHandlerFixture } from './fixture.js';

// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it finds
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

const newPassword = () => `pw-${randomBytes(12).toString('base64url')}`;

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

describe('what the function sends out', () => {
  let fixture: HandlerFixture;
  /** The stale image the run would delete. */
  let v1: PushedImage;
  afterEach(async () => {
    await fixture?.close();
  });

  /** A fixture whose secret holds `secret`; the registry has something stale to delete. */
  async function withSecret(
    secret: object | undefined,
    options: FixtureOptions = {},
  ): Promise<HandlerFixture> {
    fixture = await startHandlerFixture(options);
    if (secret) {
      fixture.secretsMock
        .on(GetSecretValueCommand, { SecretId: SECRET })
        .resolves({ SecretString: JSON.stringify(secret) });
    }
    v1 = await fixture.pushOld('web/app', 'v1', 30);
    await fixture.pushOld('web/app', 'v2', 20);
    await fixture.pushOld('web/app', 'v3', 10);
    return fixture;
  }

  /** The report it returned, its logs, metrics, saved reports and notifications, with no form of a secret. */
  function expectNoLeak(report: FunctionReport, secrets: RunSecrets): void {
    expect(fixture.published().length).toBeGreaterThan(0);
    expect(fixture.lines.length).toBeGreaterThan(0);
    expect(secretLeaks(`${JSON.stringify(report)}\n${fixture.output()}`, secrets)).toEqual([]);
  }

  it('REGISTRY_URL with credentials: refused by name with the address masked, everywhere', async () => {
    // Prepare
    fixture = await startHandlerFixture();
    const password = newPassword();
    const address = fixture.reg.url.replace('http://', `http://janitor:${password}@`);
    const env = { ...fixture.env, [ENV.registryUrl]: address };

    // Act
    const report = await fixture.handler({ env })(sampleEvent('schedule'), lambdaContext('req-url'));

    // Assess
    const masked = fixture.reg.url.replace('http://', 'http://janitor:***@');
    const problem = `REGISTRY_URL: credentials do not belong in the address, got "${masked}": set ${fixture.reg.url} and keep the user name and password in the secret that REGISTRY_SECRET_ARN names`;
    expect(report).toMatchObject({
      outcome: 'failed',
      registry: masked,
      headline: `FAILED - misconfigured: ${problem}`,
      problems: [`configuration: ${problem}`],
    });
    expect(fixture.published()[0]?.Message).toContain(`- configuration: ${problem}\n`);
    expect(fixture.emf()[0]).toMatchObject({ [METRICS.runFailed]: 1, headline: report.headline });
    expectNoLeak(report, { username: 'janitor', password });
  });

  it('a wrong password in the secret: the registry rejects it, and it is in nothing sent out', async () => {
    const password = newPassword();
    await withSecret({ username: 'janitor', password });

    const report = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-wrong'));

    expect(report).toMatchObject({
      outcome: 'failed',
      problems: [
        expect.stringMatching(
          /^the registry at http:\/\/127\.0\.0\.1:\d+ rejected the username and password \(401 after answering the challenge\) for GET \/v2\/_catalog/,
        ),
      ],
    });
    expect(fixture.keys('runs/')).toEqual([
      expect.stringMatching(/-req-wrong\.json$/),
      expect.stringMatching(/-req-wrong\.html$/),
    ]);
    expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBe(v1.digest);
    expectNoLeak(report, { username: 'janitor', password });
  });

  it('a bearer token in the secret that the registry rejects: in nothing sent out', async () => {
    const token = `tok-${randomBytes(24).toString('base64url')}`;
    await withSecret({ token });

    const report = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-token'));

    expect(report.problems).toEqual([
      expect.stringMatching(/rejected the bearer token \(401\) for GET \/v2\/_catalog/),
    ]);
    expectNoLeak(report, { tokens: [token] });
  });

  it('token auth, a wrong password: the token server refuses it, and it is in nothing sent out', async () => {
    const password = newPassword();
    await withSecret({ username: 'janitor', password }, { registry: { auth: 'token' } });

    const report = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-token-refused'));

    expect(report.problems).toEqual([
      expect.stringMatching(
        /^the token server http:\/\/127\.0\.0\.1:\d+\/token refused the username and password for scope registry:catalog:\* \(401\)$/,
      ),
    ]);
    expectNoLeak(report, { username: 'janitor', password });
  });

  it('token auth without delete permission: no password and no token it was issued is sent out', async () => {
    // Prepare
    await withSecret(undefined, {
      registry: { auth: 'token', tokenWithholds: ['repository:web/app:delete'] },
    });
    const issuedBefore = fixture.reg.issuedTokens.length;

    // Act
    const report = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-no-delete'));

    // Assess
    expect(fixture.reg.issuedTokens.length).toBeGreaterThan(issuedBefore);
    expect(report).toMatchObject({
      outcome: 'failed',
      problems: [
        expect.stringMatching(/^the registry does not let the account "janitor" delete in web\/app \(/),
      ],
    });
    expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBe(v1.digest);
    expectNoLeak(report, { ...fixture.reg.credentials, tokens: fixture.reg.issuedTokens });
  });

  it('an unreachable registry: the problem names the address, and the password is in nothing sent out', async () => {
    const port = await closedPort();
    const password = newPassword();
    fixture = await startHandlerFixture({ env: { [ENV.registryUrl]: `http://127.0.0.1:${port}` } });
    fixture.secretsMock
      .on(GetSecretValueCommand, { SecretId: SECRET })
      .resolves({ SecretString: JSON.stringify({ username: 'janitor', password }) });

    const report = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-down'));

    expect(report.problems).toEqual([expect.stringMatching(/failed \(ECONNREFUSED\)/)]);
    expectNoLeak(report, { username: 'janitor', password });
  }, 60_000);

  it('an event with credentials in it is refused with them masked', async () => {
    fixture = await startHandlerFixture();
    const password = newPassword();

    const refused = await fixture
      .handler()({ repositories: `http://janitor:${password}@registry` }, lambdaContext('req-event'))
      .then(
        () => undefined,
        (error: Error) => error,
      );

    expect(refused).toMatchObject({ name: 'EventError' });
    expect(refused?.message).toContain('got "http://janitor:***@registry"');
    expect(secretLeaks(`${refused?.message}\n${refused?.stack}`, { username: 'janitor', password })).toEqual(
      [],
    );
  });

  it('names with bidi or terminal controls are logged escaped, and no such character is sent out', async () => {
    // Prepare: the registry refuses such names on push, so they are written into its storage
    await withSecret(undefined);
    const digest = (await fixture.pushOld('web/app', 'v4', 5)).digest;
    for (const tag of ['v1\u202egpj.exe', 'red\x1b[31mtag', '\u2067rtl\u2069']) {
      const link = tagLinkPath(fixture.reg, 'web/app', tag);
      await mkdir(dirname(link), { recursive: true });
      await writeFile(link, digest);
    }

    // Act
    const report = await fixture.handler()(sampleEvent('dry-run'), lambdaContext('req-names'));

    // Assess
    expect(report.outcome).toBe('succeeded');
    expect([...new Set(fixture.logs)].sort()).toEqual(
      [
        'skipped invalid tag name "v1\\u202egpj.exe"',
        'skipped invalid tag name "red\\u001b[31mtag"',
        'skipped invalid tag name "\\u2067rtl\\u2069"',
      ].sort(),
    );
    const everything = `${JSON.stringify(report)}\n${fixture.output()}`;
    expect(everything).not.toContain('\u202e');
    expect(everything).not.toContain('\x1b');
    expect(everything).not.toMatch(RAW_CONTROL);
  });
});
