import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  createPrivateKey,
  type KeyObject,
  randomBytes,
  randomUUID,
  sign,
  X509Certificate,
} from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { Agent, request } from 'undici';
import { selfSignedCertificate } from './tls.js';

const _execFileAsync = promisify(execFile);

export const REGISTRY_BINARY = 'docker-registry';
export const TEST_USERNAME = 'janitor';
export const TOKEN_SERVICE = 'registry-janitor-test';
export const TOKEN_ISSUER = 'registry-janitor-test-issuer';

const READY_TIMEOUT_MS = 10_000;
const READY_RETRY_MS = 20;
const STOP_TIMEOUT_MS = 5_000;
const GC_TIMEOUT_MS = 120_000;
const OUTPUT_TAIL_CHARS = 64 * 1024;

export type AuthMode = 'none' | 'basic' | 'token';

export interface StartRegistryOptions {
  auth?: AuthMode;
  deleteEnabled?: boolean;
  readOnly?: boolean;
  /**
   * With token auth: scopes (`repository:app:delete`) the token server leaves out of every token it issues, as
   * it does for an account without that permission.
   */
  tokenWithholds?: readonly string[];
  /** With token auth: a query string for the realm URL, as a token server that takes a key in its URL has. */
  tokenRealmQuery?: string;
}

export interface GarbageCollectResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface TestRegistry {
  readonly url: string;
  readonly host: string;
  readonly root: string;
  readonly configPath: string;
  readonly auth: AuthMode;
  readonly credentials?: { username: string; password: string };
  readonly tokenRequests: string[];
  /** With token auth: every bearer token the token server issued. */
  readonly issuedTokens: string[];
  stop(): Promise<void>;
  /** Stops the process and starts it again on the same port and root; `readOnly` rewrites the config first. */
  restart(opts?: { readOnly?: boolean }): Promise<void>;
  /** Stops the process and keeps its storage, as `docker stop` does; `resume()` serves it again. */
  halt(): Promise<void>;
  /** Starts a halted registry again on the same port and root; nothing when it is running. */
  resume(): Promise<void>;
  /** Whether the registry process is running. */
  isRunning(): boolean;
  garbageCollect(opts?: { dryRun?: boolean; deleteUntagged?: boolean }): Promise<GarbageCollectResult>;
  /** The registry process's recent stdout and stderr. */
  logs(): string;
}

const running = new Set<{ child: ChildProcess | undefined; dir: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const entry of running) {
      entry.child?.kill('SIGKILL');
      rmSync(entry.dir, { recursive: true, force: true });
    }
  });
}

const dispatchers = new WeakMap<TestRegistry, Agent>();

/** The connection pool the support helpers use for this registry; replaced on restart. */
export function registryDispatcher(reg: TestRegistry): Agent {
  let agent = dispatchers.get(reg);
  if (!agent) {
    agent = new Agent({ connections: 16 });
    dispatchers.set(reg, agent);
  }
  return agent;
}

async function dropDispatcher(reg: TestRegistry): Promise<void> {
  const agent = dispatchers.get(reg);
  dispatchers.delete(reg);
  await agent?.destroy().catch(() => undefined);
}

export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address for port probe');
  return address.port;
}

type YamlValue = string | number | boolean | { [key: string]: YamlValue };

function toYaml(value: { [key: string]: YamlValue }, indent = ''): string {
  let out = '';
  for (const [key, item] of Object.entries(value)) {
    if (typeof item === 'object') {
      out += `${indent}${key}:\n${toYaml(item, `${indent}  `)}`;
    } else {
      out += `${indent}${key}: ${JSON.stringify(item)}\n`;
    }
  }
  return out;
}

interface Settings {
  port: number;
  root: string;
  deleteEnabled: boolean;
  readOnly: boolean;
  auth: { [key: string]: YamlValue } | undefined;
}

function configYaml(s: Settings): string {
  const config: { [key: string]: YamlValue } = {
    version: '0.1',
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: s.root },
      delete: { enabled: s.deleteEnabled },
      cache: { blobdescriptor: 'inmemory' },
      maintenance: {
        uploadpurging: { enabled: false },
        readonly: { enabled: s.readOnly },
      },
    },
    http: { addr: `127.0.0.1:${s.port}`, secret: randomBytes(16).toString('hex') },
    health: { storagedriver: { enabled: false } },
  };
  if (s.auth) config.auth = s.auth;
  return toYaml(config);
}

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('REGISTRY_')) env[key] = value;
  }
  return env;
}

class OutputTail {
  private text = '';
  append(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > OUTPUT_TAIL_CHARS) this.text = this.text.slice(-OUTPUT_TAIL_CHARS);
  }
  toString(): string {
    return this.text;
  }
}

interface RunningProcess {
  child: ChildProcess;
  exited: Promise<void>;
  hasExited(): boolean;
}

function spawnRegistry(configPath: string, output: OutputTail): RunningProcess {
  const child = spawn(REGISTRY_BINARY, ['serve', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv(),
  });
  child.stdout?.on('data', (chunk: Buffer) => output.append(chunk));
  child.stderr?.on('data', (chunk: Buffer) => output.append(chunk));
  let done = false;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      done = true;
      resolve();
    });
    child.once('error', (err) => {
      output.append(`spawn error: ${err.message}\n`);
      done = true;
      resolve();
    });
  });
  return { child, exited, hasExited: () => done };
}

async function waitUntilServing(url: string, proc: RunningProcess, output: OutputTail): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const agent = new Agent({ pipelining: 0 });
  try {
    for (;;) {
      if (proc.hasExited()) {
        throw new Error(`registry exited before serving (code ${proc.child.exitCode}):\n${output}`);
      }
      try {
        const res = await request(`${url}/v2/`, {
          dispatcher: agent,
          headersTimeout: 1_000,
          bodyTimeout: 1_000,
        });
        await res.body.dump();
        return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw new Error(`registry did not answer ${url}/v2/ within ${READY_TIMEOUT_MS} ms:\n${output}`);
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise((resolve) => {
          timer = setTimeout(resolve, READY_RETRY_MS);
        }),
        proc.exited,
      ]);
      clearTimeout(timer);
    }
  } finally {
    await agent.destroy().catch(() => undefined);
  }
}

async function stopProcess(proc: RunningProcess): Promise<void> {
  if (proc.hasExited()) return;
  proc.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    proc.exited.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

interface TokenIssuer {
  server: Server;
  realm: string;
  certPath: string;
  close(): Promise<void>;
}

interface GrantedAccess {
  type: string;
  class?: string;
  name: string;
  actions: string[];
}

/** Parses `type[(class)]:name:actions`; the name may itself contain colons (host:port/repo). */
export function parseScope(scope: string): GrantedAccess | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  const rawType = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter((a) => a.length > 0);
  const classMatch = /^([a-z0-9]+)\(([a-z0-9]+)\)$/.exec(rawType);
  if (classMatch?.[1] && classMatch[2]) {
    return { type: classMatch[1], class: classMatch[2], name, actions };
  }
  return { type: rawType, name, actions };
}

function signToken(key: KeyObject, certDer: Buffer, subject: string, access: GrantedAccess[]): string {
  const now = Math.floor(Date.now() / 1000);
  const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] };
  const claims = {
    iss: TOKEN_ISSUER,
    sub: subject,
    aud: TOKEN_SERVICE,
    exp: now + 300,
    nbf: now - 1,
    iat: now,
    jti: randomUUID(),
    access,
  };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${base64url(signature)}`;
}

function basicCredentials(header: string | undefined): { username: string; password: string } | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function startTokenIssuer(
  dir: string,
  credentials: { username: string; password: string },
  tokenRequests: string[],
  issuedTokens: string[],
  withholds: readonly string[],
  realmQuery: string,
): Promise<TokenIssuer> {
  const withheld = withholds.flatMap((scope) => parseScope(scope) ?? []);
  const granted = (access: GrantedAccess): GrantedAccess => ({
    ...access,
    actions: access.actions.filter(
      (action) =>
        !withheld.some((w) => w.type === access.type && w.name === access.name && w.actions.includes(action)),
    ),
  });
  const material = await selfSignedCertificate('registry-janitor-test-token-issuer');
  const certPath = join(dir, 'token.crt');
  await writeFile(certPath, material.cert);
  const key = createPrivateKey(material.key);
  const certDer = new X509Certificate(material.cert).raw;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    let params = url.searchParams;
    let presented = basicCredentials(req.headers.authorization);
    if (req.method === 'POST') {
      params = new URLSearchParams(await readBody(req));
      const username = params.get('username');
      const password = params.get('password');
      if (username !== null && password !== null) presented = { username, password };
    } else if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (presented?.username !== credentials.username || presented.password !== credentials.password) {
      res
        .writeHead(401, {
          'content-type': 'application/json',
          'www-authenticate': 'Basic realm="registry-janitor-test"',
        })
        .end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    const scopes = params
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter((s) => s.length > 0);
    const access: GrantedAccess[] = [];
    for (const scope of scopes) {
      tokenRequests.push(scope);
      const parsed = parseScope(scope);
      if (parsed) access.push(granted(parsed));
    }
    const token = signToken(key, certDer, presented.username, access);
    issuedTokens.push(token);
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(
        JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }),
      );
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('token server has no TCP address');
  return {
    server,
    realm: `http://127.0.0.1:${address.port}/token${realmQuery}`,
    certPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  installExitHook();
  const authMode = opts.auth ?? 'none';
  const dir = await mkdtemp(join(tmpdir(), 'registry-janitor-test-'));
  const tracked: { child: ChildProcess | undefined; dir: string } = { child: undefined, dir };
  running.add(tracked);
  const root = join(dir, 'storage');
  const configPath = join(dir, 'config.yml');
  const output = new OutputTail();
  const tokenRequests: string[] = [];
  const issuedTokens: string[] = [];
  let issuer: TokenIssuer | undefined;

  try {
    await mkdir(root);
    let credentials: { username: string; password: string } | undefined;
    let authConfig: Settings['auth'];
    if (authMode === 'basic') {
      credentials = { username: TEST_USERNAME, password: randomBytes(12).toString('base64url') };
      const htpasswdPath = join(dir, 'htpasswd');
      const hash = bcrypt.hashSync(credentials.password, 4);
      await writeFile(htpasswdPath, `${credentials.username}:${hash}\n`);
      authConfig = { htpasswd: { realm: 'registry-janitor-test', path: htpasswdPath } };
    } else if (authMode === 'token') {
      credentials = { username: TEST_USERNAME, password: randomBytes(12).toString('base64url') };
      issuer = await startTokenIssuer(
        dir,
        credentials,
        tokenRequests,
        issuedTokens,
        opts.tokenWithholds ?? [],
        opts.tokenRealmQuery ?? '',
      );
      authConfig = {
        token: {
          realm: issuer.realm,
          service: TOKEN_SERVICE,
          issuer: TOKEN_ISSUER,
          rootcertbundle: issuer.certPath,
        },
      };
    }

    const settings: Settings = {
      port: 0,
      root,
      deleteEnabled: opts.deleteEnabled ?? true,
      readOnly: opts.readOnly ?? false,
      auth: authConfig,
    };

    let proc: RunningProcess | undefined;
    for (let attempt = 1; ; attempt++) {
      settings.port = await freePort();
      await writeFile(configPath, configYaml(settings));
      proc = spawnRegistry(configPath, output);
      tracked.child = proc.child;
      try {
        await waitUntilServing(`http://127.0.0.1:${settings.port}`, proc, output);
        break;
      } catch (err) {
        await stopProcess(proc);
        if (attempt < 3 && output.toString().includes('address already in use')) continue;
        throw err;
      }
    }

    const host = `127.0.0.1:${settings.port}`;
    const url = `http://${host}`;
    let current: RunningProcess | undefined = proc;
    let stopped = false;

    const reg: TestRegistry = {
      url,
      host,
      root,
      configPath,
      auth: authMode,
      ...(credentials ? { credentials } : {}),
      tokenRequests,
      issuedTokens,
      logs: () => output.toString(),
      async stop() {
        if (stopped) return;
        stopped = true;
        if (current) await stopProcess(current);
        current = undefined;
        await dropDispatcher(reg);
        await issuer?.close();
        await rm(dir, { recursive: true, force: true });
        running.delete(tracked);
      },
      async restart(restartOpts) {
        if (stopped) throw new Error('registry was stopped');
        if (current) await stopProcess(current);
        current = undefined;
        await dropDispatcher(reg);
        if (restartOpts?.readOnly !== undefined && restartOpts.readOnly !== settings.readOnly) {
          settings.readOnly = restartOpts.readOnly;
          await writeFile(configPath, configYaml(settings));
        }
        const next = spawnRegistry(configPath, output);
        tracked.child = next.child;
        current = next;
        await waitUntilServing(url, next, output);
      },
      async halt() {
        if (stopped) throw new Error('registry was stopped');
        if (current) await stopProcess(current);
        current = undefined;
        await dropDispatcher(reg);
      },
      async resume() {
        if (stopped) throw new Error('registry was stopped');
        if (current && !current.hasExited()) return;
        const next = spawnRegistry(configPath, output);
        tracked.child = next.child;
        current = next;
        await waitUntilServing(url, next, output);
      },
      isRunning: () => current !== undefined && !current.hasExited(),
      garbageCollect(gcOpts) {
        const args = ['garbage-collect', configPath];
        if (gcOpts?.dryRun) args.push('--dry-run');
        if (gcOpts?.deleteUntagged) args.push('--delete-untagged');
        return runCollecting(REGISTRY_BINARY, args, GC_TIMEOUT_MS);
      },
    };
    return reg;
  } catch (err) {
    tracked.child?.kill('SIGKILL');
    await issuer?.close();
    await rm(dir, { recursive: true, force: true });
    running.delete(tracked);
    throw err;
  }
}

function runCollecting(file: string, args: string[], timeoutMs: number): Promise<GarbageCollectResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        exitCode: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
  });
}
