import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { type CleanupPorts, makePlan, runCleanup } from './cleanup.js';
import { type CliConfig, loadCliConfig, parseArgv, UsageError } from './config.js';
import { printable } from './domain/names.js';
import type { Plan } from './domain/plan.js';
import { parseSavedPlan } from './domain/saved-plan.js';
import { repositoryFilter } from './domain/selection.js';
import { errorMessage } from './error-message.js';
import { HostStorage } from './host/inventory.js';
import { LocalRunner } from './host/local-runner.js';
import { SsmRunner } from './host/ssm-runner.js';
import { createLimit } from './limit.js';
import type { HostRunner, StorageLister } from './ports.js';
import { createRegistryClient } from './registry/client.js';
import { resolveDockerCredentials } from './registry/docker-config.js';
import { formatBytes, renderPlan, renderRunReport, renderVerification } from './report/format.js';
import { FilesystemStorage, StorageRootError } from './storage/filesystem.js';
import { currentTags, verifyTags } from './verify.js';

export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
  /** AWS clients for `--gc ssm`; built from the environment when absent. */
  readonly aws?: { readonly ssm?: SSMClient; readonly s3?: S3Client; sleep?(ms: number): Promise<void> };
}

export const EXIT = { done: 0, failed: 1, usage: 2 } as const;

export const USAGE = `Usage: registry-janitor <plan|clean|verify> --registry URL [options]

  plan    scan the registry and show what is stale, with the reason for every tag and digest; changes nothing
  clean   delete what the plan says (asks first on a terminal; --yes to skip the question), collect garbage
          on the host with --gc, verify every kept image, report
  verify  check that every tag resolves completely (manifests, children, configs, layers)

Registry
  --registry URL            http(s)://host[:port] of the registry (or REGISTRY_URL)
  --insecure-tls            do not verify the TLS certificate
  --ca-file PEM             trust the certificates in this file
  --username NAME           with --password-stdin; else REGISTRY_USERNAME/REGISTRY_PASSWORD,
  --password-stdin          else the auths entry of ~/.docker/config.json for the host
  --storage-root DIR        the registry's filesystem root (holds docker/registry/v2): finds untagged
                            manifests and push times
  --storage-from-host       the same, read by the host script (locally, or over SSM with --instance-id)
Selection
  --repo GLOB               only these repositories (repeatable; * within a segment, ** across)
  --exclude-repo GLOB       never these repositories (repeatable)
Policy (a tag is kept when any rule keeps it)
  --keep-last N             the N most recent images (distinct digests) of each repository
  --keep-days D             images pushed in the last D days
  --keep-tag REGEX          tags matching the regular expression (repeatable)
  --untagged-grace DUR      leave untagged manifests younger than this (0, 90m, 2h, 7d; default 24h)
  --policy FILE             per-repository rules (JSON, see policy.schema.json); flags set the defaults
Garbage collection (clean)
  --gc local|ssm|none       run the host script after deleting: here, or through SSM (default none)
  --gc-mode online|stopped  GC in the running container then restart it (default), or with it stopped
  --container NAME          the registry's container (default registry)
  --registry-config PATH    its config inside the container (default by version)
  --no-restart              do not restart after GC (the registry then serves stale blob answers)
  --registry-port N         the port the registry listens on inside its container (default 5000)
  --upload-wait DUR         wait this long for pushes in progress before skipping GC (default 5m)
  --lock-file PATH          host lock that keeps two collections apart (default /var/lock/registry-janitor.lock)
  --log-dir PATH            where the full GC output goes on the host (default /var/log/registry-janitor)
  --instance-id ID          the registry host, for SSM
  --region REGION           its AWS region (default from the environment)
  --ssm-document NAME       a custom SSM document holding the host script (else AWS-RunShellScript)
  --ssm-output-bucket NAME  S3 bucket for the full command output
Run
  --concurrency N           requests in flight (default 8)
  --timeout DUR             give up after this long (default 1h)
  --json                    machine-readable plan or result on stdout
  --plan FILE               clean: apply a plan saved from plan --json
  -y, --yes                 clean: do not ask
  -h, --help, --version

Exit codes: 0 done, 1 failed (a kept image broken, a delete or GC failed, a repository unreadable),
2 bad usage or input.
`;

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function hostRunner(config: CliConfig, io: CliIo, deadline: AbortSignal): HostRunner | undefined {
  const host = config.host;
  if (!host) return undefined;
  if (host.runner === 'local') return new LocalRunner({ env: io.env, signal: deadline });
  const clientConfig = host.region !== undefined ? { region: host.region } : {};
  return new SsmRunner({
    ssm: io.aws?.ssm ?? new SSMClient(clientConfig),
    instanceId: host.instanceId,
    deadlineMs: config.timeoutMs,
    ...(io.aws?.sleep ? { sleep: io.aws.sleep } : {}),
    ...(host.document !== undefined ? { documentName: host.document } : {}),
    ...(host.outputBucket !== undefined
      ? { outputBucket: host.outputBucket, s3: io.aws?.s3 ?? new S3Client(clientConfig) }
      : {}),
  });
}

function buildPorts(config: CliConfig, io: CliIo, deadline: AbortSignal): CleanupPorts {
  const credentials = config.credentials.kind === 'none' ? undefined : config.credentials;
  const registry = createRegistryClient({
    url: config.registryUrl,
    concurrency: config.concurrency,
    insecureTls: config.insecureTls,
    deadline,
    userAgent: 'registry-janitor',
    ...(config.ca !== undefined ? { ca: config.ca } : {}),
    ...(credentials
      ? { credentials: { username: credentials.username, password: credentials.password } }
      : {}),
    onInvalidName: (kind, value) =>
      io.stderr.write(`warning: skipped invalid ${kind} name ${printable(value)}\n`),
  });
  const progress = io.stderr.isTTY
    ? { update: (text: string) => io.stderr.write(`\r\x1b[K${text}`) }
    : undefined;
  const host = hostRunner(config, io, deadline);
  const params = config.host?.params ?? {};
  let storage: StorageLister | undefined;
  if (config.storageRoot !== undefined) storage = new FilesystemStorage(config.storageRoot);
  else if (config.storageFromHost && host) storage = new HostStorage(host, params);
  return {
    registry,
    clock: { now: () => new Date() },
    ...(storage ? { storage } : {}),
    ...(host ? { host } : {}),
    ...(progress ? { progress } : {}),
  };
}

async function confirm(io: CliIo, question: string): Promise<boolean> {
  const prompt = createInterface({ input: io.stdin, output: io.stderr as NodeJS.WritableStream });
  try {
    return /^y(es)?$/i.test((await prompt.question(question)).trim());
  } finally {
    prompt.close();
  }
}

async function loadPlan(config: CliConfig, ports: CleanupPorts): Promise<Plan> {
  if (config.planFile === undefined) {
    return (
      await makePlan(ports, {
        registryUrl: config.registryUrl,
        include: config.include,
        exclude: config.exclude,
        policy: config.policy,
        concurrency: config.concurrency,
      })
    ).plan;
  }
  let json: unknown;
  try {
    json = JSON.parse(await readFile(config.planFile, 'utf8'));
  } catch (error) {
    throw new UsageError([`--plan: ${config.planFile} cannot be read as JSON (${errorMessage(error)})`]);
  }
  let saved: Plan;
  try {
    saved = parseSavedPlan(json, `--plan: ${config.planFile}`);
  } catch (error) {
    throw new UsageError([errorMessage(error)]);
  }
  if (saved.registry !== config.registryUrl) {
    throw new UsageError([
      `--plan: ${config.planFile} was made for ${saved.registry}, not ${config.registryUrl}; plan again for this registry`,
    ]);
  }
  return saved;
}

async function execute(config: CliConfig, io: CliIo): Promise<number> {
  const deadline = AbortSignal.timeout(config.timeoutMs);
  const ports = buildPorts(config, io, deadline);
  if (config.command === 'verify') return verify(config, io, ports);
  const plan = await loadPlan(config, ports);
  if (ports.progress) io.stderr.write('\r\x1b[K');
  const failedRepositories = plan.repositories.filter((r) => r.error !== undefined);
  for (const repository of failedRepositories) {
    io.stderr.write(
      `error: repository ${repository.name} could not be scanned and is left alone: ${repository.error}\n`,
    );
  }
  const scanExit = failedRepositories.length > 0 ? EXIT.failed : EXIT.done;

  if (config.command === 'plan') {
    io.stdout.write(config.json ? `${JSON.stringify(plan, null, 2)}\n` : renderPlan(plan));
    return scanExit;
  }

  const units = plan.repositories.reduce((sum, r) => sum + r.deletions.length, 0);
  if (!config.json) io.stdout.write(renderPlan(plan));
  if (units === 0 && !config.json) io.stdout.write('Nothing to delete.\n');
  if (units > 0 && !config.yes) {
    const question = `Delete ${plan.totals.manifestsDeleted} manifests (frees ${plan.reclaim.exact ? '' : 'at most '}${formatBytes(plan.reclaim.bytes)} after garbage collection)? [y/N] `;
    if (!(await confirm(io, question))) {
      io.stderr.write('Nothing deleted.\n');
      return EXIT.done;
    }
  }
  const report = await runCleanup(ports, plan, {
    concurrency: config.concurrency,
    ...(config.collectGarbage && config.host ? { garbageCollection: config.host.params } : {}),
  });
  if (ports.progress) io.stderr.write('\r\x1b[K');
  if (config.json) io.stdout.write(`${JSON.stringify({ plan, report }, null, 2)}\n`);
  else io.stdout.write(`\n${renderRunReport(report)}`);
  for (const problem of report.problems) io.stderr.write(`error: ${problem}\n`);
  return report.outcome === 'failed' ? EXIT.failed : EXIT.done;
}

async function verify(config: CliConfig, io: CliIo, ports: CleanupPorts): Promise<number> {
  const limit = createLimit(config.concurrency);
  const repositories = (await ports.registry.listRepositories()).filter(
    repositoryFilter(config.include, config.exclude),
  );
  const tags = await currentTags(ports.registry, repositories, limit);
  const verification = await verifyTags(ports.registry, tags, config.concurrency);
  io.stdout.write(
    config.json ? `${JSON.stringify(verification, null, 2)}\n` : renderVerification(verification),
  );
  return verification.broken.length > 0 ? EXIT.failed : EXIT.done;
}

/** The command line: parse, validate, run, print. Returns the exit code; never throws. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let config: CliConfig;
  try {
    const parsed = parseArgv(argv);
    if (parsed.values.help) {
      io.stdout.write(USAGE);
      return EXIT.done;
    }
    if (parsed.values.version) {
      const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
        version: string;
      };
      io.stdout.write(`${pkg.version}\n`);
      return EXIT.done;
    }
    if (parsed.command === 'clean' && !parsed.values.yes && !io.stdin.isTTY) {
      throw new UsageError(['clean deletes manifests: pass --yes to confirm when not running on a terminal']);
    }
    config = await loadCliConfig(parsed, {
      env: io.env,
      readFile: (path) => readFile(path, 'utf8'),
      readStdin: () => readAll(io.stdin),
      dockerCredentials: (host) => resolveDockerCredentials(host, { env: io.env }),
    });
  } catch (error) {
    return usageFailure(io, error);
  }
  for (const warning of config.warnings) io.stderr.write(`warning: ${warning}\n`);
  try {
    return await execute(config, io);
  } catch (error) {
    if (error instanceof UsageError) return usageFailure(io, error);
    if (error instanceof StorageRootError) return usageFailure(io, new UsageError([error.message]));
    io.stderr.write(`error: ${errorMessage(error)}\n`);
    return EXIT.failed;
  }
}

function usageFailure(io: CliIo, error: unknown): number {
  if (!(error instanceof UsageError)) {
    io.stderr.write(`error: ${errorMessage(error)}\n`);
    return EXIT.failed;
  }
  for (const problem of error.problems) io.stderr.write(`error: ${problem}\n`);
  io.stderr.write('Run registry-janitor --help for the options.\n');
  return EXIT.usage;
}
