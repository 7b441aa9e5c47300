import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestRegistry } from './registry.js';

const CLI_PATH = fileURLToPath(new URL('./docker-stand-in-cli.mjs', import.meta.url));

export const STAND_IN_IMAGE = 'registry:2.8.2';
export const STAND_IN_IMAGE_ID = `sha256:${'5'.repeat(64)}`;
export const V3_VERSION_LINE = 'registry github.com/distribution/distribution/v3 v3.0.0';
/** What the Docker CLI prints when its daemon does not answer. */
export const DAEMON_DOWN =
  'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?';

export interface DockerStandInOptions {
  /** The only container the stand-in knows. @default 'registry' */
  readonly container?: string;
  /** What the registry binary prints for `--version`, e.g. V3_VERSION_LINE; default: the real binary's. */
  readonly registryVersion?: string;
  /** Every `garbage-collect` exits 1 without collecting. */
  readonly failGarbageCollect?: boolean;
  /**
   * Every `garbage-collect` prints the registry's usage and exits 0 without collecting, as a collector started
   * with a wrong entrypoint, binary or config path may.
   */
  readonly noopGarbageCollect?: boolean;
  /** Runs when a `garbage-collect` starts, before it collects: what happens on the registry meanwhile. */
  readonly beforeGarbageCollect?: () => Promise<unknown>;
  /**
   * Every `garbage-collect` (only the first with 'once') waits, without collecting, until it is killed or
   * released; see `garbageCollectHeld()` and `releaseGarbageCollect()`.
   */
  readonly holdGarbageCollect?: boolean | 'once';
  /** Every call but `docker --version` exits 1 with this on stderr, as when the daemon is down (DAEMON_DOWN). */
  readonly failEveryCall?: string;
  /** The container's environment as `docker inspect` shows it (KEY=VALUE). */
  readonly containerEnv?: readonly string[];
  /** The environment the returned `env` starts from. @default process.env */
  readonly baseEnv?: NodeJS.ProcessEnv;
}

export interface StandInCall {
  readonly argv: string[];
  /** Whether the registry process was running when the call began. */
  readonly registryRunning: boolean;
  /** `run` only: the environment given to the one-off container (--env-file, -e). */
  readonly env?: string[];
}

export interface DockerStandIn {
  /** Holds the `docker` executable. */
  readonly binDir: string;
  /** `baseEnv` with binDir first on PATH. */
  readonly env: NodeJS.ProcessEnv;
  /** The argv of every `docker` call so far, in order. */
  calls(): Promise<string[][]>;
  /** The same, with the registry's state at each call. */
  log(): Promise<StandInCall[]>;
  /** Resolves when the first held `garbage-collect` (holdGarbageCollect) has started. */
  garbageCollectHeld(): Promise<void>;
  /** Lets every held `garbage-collect`, and every later one, collect. */
  releaseGarbageCollect(): void;
  close(): Promise<void>;
}

function quoteForSh(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * Puts a `docker` executable in a temporary directory that maps the Docker CLI onto a local test registry:
 * `exec` runs the command here with the container's paths (registry binary, config, /var/lib/registry,
 * http://127.0.0.1:5000/) mapped onto the test registry; `restart`/`stop`/`start` restart, halt and resume
 * the registry process through a control server in this process; `inspect` and `run --volumes-from` act as
 * for a container running the registry image. Every call is recorded.
 */
export async function installDockerStandIn(
  reg: TestRegistry,
  opts: DockerStandInOptions = {},
): Promise<DockerStandIn> {
  const binDir = await mkdtemp(join(tmpdir(), 'registry-janitor-docker-'));
  const callLog = join(binDir, 'calls.jsonl');
  await writeFile(callLog, '');

  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work, work);
    queue = next.catch(() => undefined);
    return next;
  };
  let announceHeld: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    announceHeld = resolve;
  });
  let holds = 0;
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const actions: Record<string, () => Promise<string | undefined>> = {
    '/restart': () => reg.restart().then(() => undefined),
    '/stop': () => reg.halt().then(() => undefined),
    '/start': () => reg.resume().then(() => undefined),
    '/gc-hold': async () => {
      if (opts.holdGarbageCollect === 'once' && holds > 0) return 'collect';
      holds++;
      announceHeld();
      return 'hold';
    },
    '/gc-starting': async () => {
      await opts.beforeGarbageCollect?.();
      return undefined;
    },
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = req.url ?? '/';
    if (req.method === 'GET' && path === '/state') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ running: reg.isRunning() }));
      return;
    }
    if (req.method === 'POST' && path === '/gc-released') {
      // Not queued behind the other actions: the registry keeps being stopped and started meanwhile.
      await released;
      res.writeHead(200).end('');
      return;
    }
    const action = req.method === 'POST' ? actions[path] : undefined;
    if (!action) {
      res.writeHead(404).end(`no such control action ${path}`);
      return;
    }
    const answer = await serialized(action);
    res.writeHead(200).end(answer ?? '');
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(err instanceof Error ? err.message : String(err));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string')
    throw new Error('the control server has no TCP address');

  const container = opts.container ?? 'registry';
  const settingsPath = join(binDir, 'stand-in.json');
  await writeFile(
    settingsPath,
    JSON.stringify({
      container,
      containerId: '0123456789ab'.repeat(5).slice(0, 64),
      controlUrl: `http://127.0.0.1:${address.port}`,
      callLog,
      configPath: reg.configPath,
      root: reg.root,
      registryUrl: reg.url,
      image: STAND_IN_IMAGE,
      imageId: STAND_IN_IMAGE_ID,
      env: opts.containerEnv ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      ...(opts.registryVersion !== undefined ? { registryVersion: opts.registryVersion } : {}),
      failGarbageCollect: opts.failGarbageCollect ?? false,
      noopGarbageCollect: opts.noopGarbageCollect ?? false,
      hookGarbageCollect: opts.beforeGarbageCollect !== undefined,
      holdGarbageCollect: opts.holdGarbageCollect !== undefined && opts.holdGarbageCollect !== false,
      ...(opts.failEveryCall !== undefined ? { failEveryCall: opts.failEveryCall } : {}),
    }),
  );
  const docker = join(binDir, 'docker');
  await writeFile(
    docker,
    `#!/bin/sh\nexec ${quoteForSh(process.execPath)} ${quoteForSh(CLI_PATH)} ${quoteForSh(settingsPath)} "$@"\n`,
  );
  await chmod(docker, 0o755);

  const baseEnv = opts.baseEnv ?? process.env;
  const log = async (): Promise<StandInCall[]> =>
    (await readFile(callLog, 'utf8'))
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as StandInCall);
  return {
    binDir,
    env: { ...baseEnv, PATH: [binDir, baseEnv.PATH].filter(Boolean).join(delimiter) },
    log,
    calls: async () => (await log()).map((call) => call.argv),
    garbageCollectHeld: () => held,
    releaseGarbageCollect: () => release(),
    close: async () => {
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      await rm(binDir, { recursive: true, force: true });
    },
  };
}
