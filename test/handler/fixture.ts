import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import {
  GetSecretValueCommand,
  type ServiceInputTypes as SecretsInput,
  SecretsManagerClient,
  type SecretsManagerClientResolvedConfig,
  type ServiceOutputTypes as SecretsOutput,
} from '@aws-sdk/client-secrets-manager';
import {
  PublishCommand,
  type PublishCommandInput,
  SNSClient,
  type SNSClientResolvedConfig,
  type ServiceInputTypes as SnsInput,
  type ServiceOutputTypes as SnsOutput,
} from '@aws-sdk/client-sns';
import { type AwsStub, mockClient } from 'aws-sdk-client-mock';
import { ENV } from '../../lambda/aws/function-config.js';
import { PENDING_KEY } from '../../lambda/aws/history.js';
import { createHandler, type Handler, type HandlerDeps } from '../../lambda/handler.js';
import { documentContent } from '../../lambda/host/ssm-runner.js';
import type { FunctionReport } from '../../lambda/report/function.js';
import {
  type DockerStandIn,
  type DockerStandInOptions,
  installDockerStandIn,
} from '../support/docker-stand-in.js';
import { type PushedImage, pushImage } from '../support/images.js';
import { type StartRegistryOptions, startRegistry, type TestRegistry } from '../support/registry.js';
import { createSsmFake, fakeDocument, type SsmFake } from '../support/ssm-fake.js';
import { setRevisionPushTime, setTagPushTime } from '../support/storage.js';

export const INSTANCE = 'i-0123456789abcdef0';
export const DOCUMENT = 'RegistryJanitor-Maintenance';
export const BUCKET = 'janitor-output';
export const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:registry-janitor';
export const SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry-janitor-AbCdEf';
export const DISK_ALARM = 'RegistryJanitor-registry-disk-used';
export const NAMESPACE = 'RegistryJanitorTest';

const REGION = 'eu-west-1';
const FAKE_CREDENTIALS = { accessKeyId: 'fake', secretAccessKey: 'fake' };
const DAY = 86_400_000;

/** Holds the host's `garbage-collect` until released: a collection that outlasts the function's wait. */
export interface CollectionGate {
  /** Resolves when a collection is being held. */
  readonly reached: Promise<void>;
  release(): void;
}

async function installGate(
  docker: DockerStandIn,
  dir: string,
): Promise<{ gate: CollectionGate; env: NodeJS.ProcessEnv; close(): Promise<void> }> {
  let announce: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => {
    announce = resolve;
  });
  const held: ServerResponse[] = [];
  let released = false;
  const server = createServer((_req, res) => {
    if (released) {
      res.end();
      return;
    }
    held.push(res);
    announce();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the gate has no TCP address');
  const bin = join(dir, 'gate-bin');
  await mkdir(bin);
  const script = join(bin, 'docker');
  await writeFile(
    script,
    [
      '#!/bin/sh',
      'case " $* " in',
      '*" garbage-collect "*)',
      `  node -e 'fetch(process.argv[1]).then((r) => r.text()).then(() => process.exit(0), () => process.exit(1))' "$JANITOR_TEST_GATE_URL" || exit 1`,
      '  ;;',
      'esac',
      'exec "$JANITOR_TEST_REAL_DOCKER" "$@"',
      '',
    ].join('\n'),
  );
  await chmod(script, 0o755);
  const release = () => {
    released = true;
    for (const res of held.splice(0)) res.end();
  };
  return {
    gate: { reached, release },
    env: {
      ...docker.env,
      PATH: `${bin}${delimiter}${docker.env.PATH ?? ''}`,
      JANITOR_TEST_GATE_URL: `http://127.0.0.1:${address.port}/held`,
      JANITOR_TEST_REAL_DOCKER: join(docker.binDir, 'docker'),
    },
    close: async () => {
      release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface HandlerFixture {
  readonly reg: TestRegistry;
  readonly docker: DockerStandIn;
  readonly fake: SsmFake;
  readonly sns: SNSClient;
  readonly secrets: SecretsManagerClient;
  readonly secretsMock: AwsStub<SecretsInput, SecretsOutput, SecretsManagerClientResolvedConfig>;
  readonly snsMock: AwsStub<SnsInput, SnsOutput, SNSClientResolvedConfig>;
  /** Present with `gate: true`. */
  readonly gate?: CollectionGate;
  /** The function's environment; tests may change it before building a handler. */
  readonly env: Record<string, string>;
  /** Every line the handlers wrote for metrics. */
  readonly lines: string[];
  /** Every warning the handlers logged. */
  readonly logs: string[];
  handler(deps?: Partial<HandlerDeps>): Handler;
  /** Pushes an image and makes it `days` old. */
  pushOld(repository: string, tag: string, days: number, layerSizes?: number[]): Promise<PushedImage>;
  /** The metrics documents written so far. */
  emf(): Record<string, unknown>[];
  published(): PublishCommandInput[];
  /** Everything the handlers sent out besides their return value: logs, metrics, S3 bodies, SNS messages. */
  output(): string;
  /** A JSON object the function wrote to the output bucket. */
  object(key: string): unknown;
  keys(prefix: string): string[];
  pending(): unknown;
  close(): Promise<void>;
}

export interface FixtureOptions {
  /** Hold garbage collection on the host until `gate.release()`. */
  readonly gate?: boolean;
  readonly env?: Record<string, string>;
  /** How the stand-in presents the registry container. */
  readonly docker?: DockerStandInOptions;
  /** @default { auth: 'basic' } */
  readonly registry?: StartRegistryOptions;
}

export async function startHandlerFixture(options: FixtureOptions = {}): Promise<HandlerFixture> {
  const reg = await startRegistry(options.registry ?? { auth: 'basic' });
  const docker = await installDockerStandIn(reg, options.docker);
  const dir = await mkdtemp(join(tmpdir(), 'janitor-handler-'));
  const gated = options.gate ? await installGate(docker, dir) : undefined;
  const fake = await createSsmFake({
    instanceId: INSTANCE,
    env: gated?.env ?? docker.env,
    documents: { [DOCUMENT]: fakeDocument(documentContent()) },
  });
  fake.s3Mock
    .on(PutObjectCommand)
    .callsFake(async (input: { Bucket: string; Key: string; Body: string; IfNoneMatch?: string }) => {
      const key = `${input.Bucket}/${input.Key}`;
      if (input.IfNoneMatch === '*' && fake.objects.has(key)) {
        throw new S3ServiceException({
          name: 'PreconditionFailed',
          $fault: 'client',
          message: 'At least one of the pre-conditions you specified did not hold',
          $metadata: { httpStatusCode: 412 },
        });
      }
      fake.objects.set(key, String(input.Body));
      return { $metadata: {} };
    });
  fake.s3Mock.on(DeleteObjectCommand).callsFake(async (input: { Bucket: string; Key: string }) => {
    fake.objects.delete(`${input.Bucket}/${input.Key}`);
    return { $metadata: {} };
  });

  const secrets = new SecretsManagerClient({ region: REGION, credentials: FAKE_CREDENTIALS });
  const secretsMock = mockClient(secrets);
  secretsMock
    .on(GetSecretValueCommand, { SecretId: SECRET })
    .resolves({ SecretString: JSON.stringify(reg.credentials) });
  const sns = new SNSClient({ region: REGION, credentials: FAKE_CREDENTIALS });
  const snsMock = mockClient(sns);
  snsMock.on(PublishCommand).resolves({ MessageId: 'message-1' });

  const env: Record<string, string> = {
    [ENV.registryUrl]: reg.url,
    [ENV.registrySecretArn]: SECRET,
    [ENV.instanceId]: INSTANCE,
    [ENV.ssmDocument]: DOCUMENT,
    [ENV.bucket]: BUCKET,
    [ENV.topicArn]: TOPIC,
    [ENV.metricsNamespace]: NAMESPACE,
    [ENV.diskAlarmName]: DISK_ALARM,
    [ENV.policy]: JSON.stringify({ defaults: { keepLast: 2, untaggedGrace: '1h' } }),
    HOST_LOCK_FILE: join(dir, 'janitor.lock'),
    HOST_LOG_DIR: join(dir, 'logs'),
    ...options.env,
  };
  const lines: string[] = [];
  const logs: string[] = [];
  const published = () => snsMock.commandCalls(PublishCommand).map((call) => call.args[0].input);

  return {
    reg,
    docker,
    fake,
    sns,
    secrets,
    secretsMock,
    snsMock,
    ...(gated ? { gate: gated.gate } : {}),
    env,
    lines,
    logs,
    handler: (deps = {}) =>
      createHandler({
        env: { ...env },
        ssm: fake.ssm,
        s3: fake.s3,
        sns,
        secretsManager: secrets,
        writeLine: (line) => lines.push(line),
        warn: (message) => logs.push(message),
        ssmTuning: { sleep: fake.sleep },
        ...deps,
      }),
    async pushOld(repository, tag, days, layerSizes = [2048]) {
      const image = await pushImage(reg, repository, tag, { layerSizes });
      const when = new Date(Date.now() - days * DAY);
      await setRevisionPushTime(reg, repository, image.digest, when);
      await setTagPushTime(reg, repository, tag, when);
      return image;
    },
    emf: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
    published,
    output: () =>
      [
        ...logs,
        ...lines,
        ...fake.s3Mock.commandCalls(PutObjectCommand).map((call) => String(call.args[0].input.Body)),
        ...published().flatMap((input) => [input.Subject ?? '', input.Message ?? '']),
      ].join('\n'),
    object: (key) => {
      const text = fake.objects.get(`${BUCKET}/${key}`);
      return text === undefined ? undefined : JSON.parse(text);
    },
    keys: (prefix) =>
      [...fake.objects.keys()]
        .filter((key) => key.startsWith(`${BUCKET}/${prefix}`))
        .map((key) => key.slice(BUCKET.length + 1)),
    pending: () => {
      const text = fake.objects.get(`${BUCKET}/${PENDING_KEY}`);
      return text === undefined ? undefined : JSON.parse(text);
    },
    async close() {
      gated?.gate.release();
      await fake.close();
      await gated?.close();
      secretsMock.restore();
      snsMock.restore();
      await docker.close();
      await reg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The report's saved copy, from the key its historyLocation names. */
export function savedReport(fixture: HandlerFixture, report: FunctionReport): unknown {
  const location = report.historyLocation ?? '';
  return fixture.object(location.replace(`s3://${BUCKET}/`, ''));
}
