import { describe, expect, it } from 'vitest';
import { escapeControls, printable } from '../lambda/domain/names.js';
import { Redactor, redactText } from '../lambda/redact.js';
import { secretLeaks } from './support/leaks.js';

describe('secrets given away by their shape', () => {
  it.each([
    ['a password in a URL', 'got "http://alice:PASSWORD@host:5000"', 'got "http://alice:***@host:5000"'],
    [
      'an unencoded password holding @, / and ?',
      'got http://alice:p@ss/w?rd@host:5000/v2/ here',
      'got http://alice:***@host:5000/v2/ here',
    ],
    [
      'a user name alone, which may be a token',
      'https://ghp_0123456789@git.example/x',
      'https://***@git.example/x',
    ],
    [
      'a token in the query',
      'GET http://127.0.0.1:9/token?access_token=abc123&service=registry&scope=repository:a:pull 200',
      'GET http://127.0.0.1:9/token?access_token=***&service=registry&scope=repository:a:pull 200',
    ],
    [
      'a presigned URL',
      'https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=f00d&n=10',
      'https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&n=10',
    ],
    [
      'a password parameter',
      'POST /token?password=hunter22&username=alice',
      'POST /token?password=***&username=alice',
    ],
    [
      'a token server answer',
      '{"token":"abc123","access_token":"def456","expires_in":300}',
      '{"token":"***","access_token":"***","expires_in":300}',
    ],
    ['an Authorization header', 'sent Authorization: Basic YWxpY2U6cGFzcw==', 'sent Authorization: ***'],
    ['an Authorization JSON field', '{"authorization":"Bearer x.y.z"}', '{"authorization":"***"}'],
    [
      'Basic and Bearer credentials',
      'Basic YWxpY2U6cGFzcw== then Bearer Zm9vYmFyYmF6cXV4',
      'Basic *** then Bearer ***',
    ],
    ['a JSON Web Token', 'token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl ok', 'token *** ok'],
  ])('%s', (_, text, shown) => {
    expect(redactText(text)).toBe(shown);
  });

  it.each([
    'the registry at http://127.0.0.1:5000 requires a username and password (Basic) and none were given',
    'sent a Bearer challenge without a usable realm URL',
    'WWW-Authenticate: Bearer realm="http://127.0.0.1:9/token",service="registry",scope="registry:catalog:*"',
    'GET http://127.0.0.1:5000/v2/_catalog?n=1000&last=web%2Fapp answered 500',
    'User is not authorized to perform: SNS:Publish (AuthorizationError)',
    'manifest web/app@sha256:0123 is broken',
    'the secret has no fields: expected {"username":"…","password":"…"} or {"token":"…"}',
  ])('leaves ordinary text alone: %s', (text) => {
    expect(redactText(text)).toBe(text);
  });
});

describe('a Redactor', () => {
  const username = 'janitor';
  const password = 'hunter2 with spaces & "quotes"';

  it("masks the run's password in every form it takes, even wrapped onto the next line", () => {
    // Prepare
    const redactor = new Redactor();
    redactor.addCredentials({ username, password });
    const pair = Buffer.from(`${username}:${password}`);
    const text = [
      `plain ${password}`,
      `wrapped hunter2 with\n    spaces & "quotes"`,
      `json ${JSON.stringify({ message: `said ${password}` })}`,
      `pair ${username}:${password}`,
      `base64 ${pair.toString('base64')} url-safe ${pair.toString('base64url')}`,
      `percent-encoded ${encodeURIComponent(password)}`,
    ].join('\n');

    // Act
    const shown = redactor.text(text);

    // Assess
    expect(secretLeaks(shown, { username, password })).toEqual([]);
    expect(shown.split('\n')[0]).toBe('plain ***');
    const json = shown.split('\n').find((line) => line.startsWith('json ')) ?? '';
    expect(JSON.parse(json.slice('json '.length))).toEqual({ message: 'said ***' });
  });

  it('masks a token it was told of, and no secret it was not', () => {
    const redactor = new Redactor();
    redactor.add('opaque-token-0123');
    redactor.add('abc');

    expect(redactor.text('Bearer opaque-token-0123 for abc')).toBe('Bearer *** for abc');
  });

  it('escapes terminal controls and keeps line breaks and tabs', () => {
    const shown = new Redactor().text('a\tb\nc\u202ed\x1b[31me\x7f\u0085\r');

    expect(shown).toBe('a\tb\nc\\u202ed\\u001b[31me\\u007f\\u0085\\u000d');
  });

  it('copies a report with every string masked and escaped, keys included, and nothing else changed', () => {
    const redactor = new Redactor();
    redactor.add('s3cr3t-value');
    const report = {
      problems: ['GET http://u:pw@h/v2/ failed', 'said s3cr3t-value'],
      figures: { tagsVerified: 3, ratio: 0.5 },
      dryRun: false,
      pending: null,
      'odd\u202ekey': 'x',
    };

    expect(redactor.value(report)).toEqual({
      problems: ['GET http://u:***@h/v2/ failed', 'said ***'],
      figures: { tagsVerified: 3, ratio: 0.5 },
      dryRun: false,
      pending: null,
      'odd\\u202ekey': 'x',
    });
  });

  it('shows what it already masked unchanged', () => {
    const redactor = new Redactor();
    redactor.addCredentials({ username, password });
    const once = redactor.text(`http://a:b@h ?token=t Basic YWxpY2U6cGFzcw== ${password} \u202e`);

    expect(redactor.text(once)).toBe(once);
  });
});

describe('an untrusted value in a message', () => {
  it.each([
    ['a right-to-left override', 'v1\u202egpj.exe', '"v1\\u202egpj.exe"'],
    ['isolates and marks', '\u2066a\u2069\u200e\u200f\u061c', '"\\u2066a\\u2069\\u200e\\u200f\\u061c"'],
    ['an ANSI escape', 'a\x1b[2Jb', '"a\\u001b[2Jb"'],
    ['DEL and C1 controls', 'a\x7fb\x85c\x9b', '"a\\u007fb\\u0085c\\u009b"'],
    ['a line break', 'a\nb', '"a\\nb"'],
  ])('%s is quoted and escaped', (_, value, shown) => {
    expect(printable(value)).toBe(shown);
  });

  it('keeps what the caller keeps', () => {
    expect(escapeControls('a\nb\u202e', '\n')).toBe('a\nb\\u202e');
  });
});
