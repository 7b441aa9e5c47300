import 'aws-sdk-client-mock-vitest/extend';
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { SECRET_TTL_MS, SecretCredentials } from '../../lambda/aws/secrets.js';

const SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry-AbCdEf';
const SHAPES = 'expected {"username":"…","password":"…"} or {"token":"…"}';

describe('registry credentials from Secrets Manager', () => {
  const client = new SecretsManagerClient({ region: 'eu-west-1' });
  const mock = mockClient(client);
  afterEach(() => mock.reset());

  const source = (now: () => number = Date.now) => new SecretCredentials({ client, secretId: SECRET, now });
  const holding = (value: unknown) =>
    mock.on(GetSecretValueCommand, { SecretId: SECRET }).resolves({ SecretString: JSON.stringify(value) });

  it.each([
    [
      { username: 'janitor', password: 'p4ss' },
      { username: 'janitor', password: 'p4ss' },
    ],
    [{ token: 'abc.def' }, { token: 'abc.def' }],
    [
      { username: 'janitor', password: 'p4ss', rotatedAt: '2026-01-01' },
      { username: 'janitor', password: 'p4ss' },
    ],
  ])('reads %j', async (secret, credentials) => {
    holding(secret);

    expect(await source().credentials()).toEqual(credentials);
  });

  it('asks once within the time to live, and again after it: a rotated secret is picked up', async () => {
    let time = 0;
    const credentials = source(() => time);
    holding({ username: 'janitor', password: 'old' });
    await credentials.credentials();
    holding({ username: 'janitor', password: 'new' });

    time = SECRET_TTL_MS - 1;
    const cached = await credentials.credentials();
    time = SECRET_TTL_MS;
    const fresh = await credentials.credentials();

    expect(cached).toEqual({ username: 'janitor', password: 'old' });
    expect(fresh).toEqual({ username: 'janitor', password: 'new' });
    expect(mock).toHaveReceivedCommandTimes(GetSecretValueCommand, 2);
  });

  it.each([
    ['not JSON', 'janitor:p4ss', `the secret ${SECRET} is not JSON: ${SHAPES}`],
    ['a list', '["janitor","p4ss"]', `the secret ${SECRET} is not a JSON object: ${SHAPES}`],
    [
      'a username without a password',
      '{"username":"janitor"}',
      `the secret ${SECRET} needs both "username" and "password" as non-empty strings: ${SHAPES}`,
    ],
    [
      'a username basic auth cannot carry',
      '{"username":"a:b","password":"p4ss"}',
      `the secret ${SECRET} has a "username" containing ":", which basic auth cannot carry`,
    ],
    [
      'other fields',
      '{"user":"janitor","pass":"p4ss"}',
      `the secret ${SECRET} has the fields "user", "pass": ${SHAPES}`,
    ],
  ])('refuses %s, naming the secret and the shapes, never the values', async (_, text, problem) => {
    mock.on(GetSecretValueCommand).resolves({ SecretString: text });

    const error = (await source()
      .credentials()
      .catch((e: unknown) => e)) as Error;

    expect(error).toMatchObject({ name: 'SecretError', code: 'RJ_SECRET', message: problem });
    expect(error.message).not.toContain('p4ss');
  });

  it('refuses a binary secret', async () => {
    mock.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1, 2]) });

    await expect(source().credentials()).rejects.toThrow(`the secret ${SECRET} has no text value: ${SHAPES}`);
  });

  it('says what to fix when the secret cannot be read, keeps the cause, and tries again next time', async () => {
    const denied = Object.assign(new Error('not authorized to perform: secretsmanager:GetSecretValue'), {
      name: 'AccessDeniedException',
    });
    mock.on(GetSecretValueCommand).rejectsOnce(denied).resolves({ SecretString: '{"token":"t"}' });
    const credentials = source();

    const error = (await credentials.credentials().catch((e: unknown) => e)) as Error;
    const retried = await credentials.credentials();

    expect(error.message).toBe(
      `the secret ${SECRET} could not be read (AccessDeniedException: not authorized to perform: secretsmanager:GetSecretValue): the function role needs secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)`,
    );
    expect(error.cause).toBe(denied);
    expect(retried).toEqual({ token: 't' });
  });

  it('says when there is no such secret', async () => {
    mock.on(GetSecretValueCommand).rejects(
      new ResourceNotFoundException({
        message: "Secrets Manager can't find the specified secret.",
        $metadata: {},
      }),
    );

    await expect(source().credentials()).rejects.toThrow(/: no such secret in this account and region$/);
  });
});
