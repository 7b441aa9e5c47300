import 'aws-sdk-client-mock-vitest/extend';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, type GetObjectCommandOutput, S3Client } from '@aws-sdk/client-s3';
import {
  AccessDeniedException,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  InvalidInstanceId,
  InvocationDoesNotExist,
  SendCommandCommand,
  type SendCommandCommandInput,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hostEnvironment, maintenanceScript } from '../../lambda/host/script.js';
import {
  documentCommands,
  documentContent,
  documentParameters,
  SSM_STDOUT_LIMIT,
  SsmRunner,
  type SsmRunnerOptions,
} from '../../lambda/host/ssm-runner.js';
import type { HostAction, HostParams } from '../../lambda/ports.js';
import { type DockerStandIn, installDockerStandIn } from '../support/docker-stand-in.js';
import { deleteManifest, headManifest, pushImage, putManifest } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { createSsmFake, fakeDocument, type SsmFake } from '../support/ssm-fake.js';
import { blobSizes, freedBytes } from '../support/storage.js';

const INSTANCE = 'i-0123456789abcdef0';
const COMMAND_ID = '0b5f2c1e-1111-2222-3333-444455556666';
const BUCKET = 'janitor-ssm-output';
const PREFIX = 'registry-janitor/ssm';

const collectSummary = {
  registryJanitor: 1,
  action: 'collect',
  status: 'done',
  mode: 'online',
  version: '2.8.2',
  blobsMarked: 4,
  blobsDeleted: 3,
  manifestsDeleted: 1,
  bytesBefore: 9000,
  bytesAfter: 4000,
  bytesFreed: 5000,
  diskUsedPercentBefore: 40,
  diskUsedPercentAfter: 38,
  restarted: true,
  gcExitCode: 0,
  log: '/var/log/registry-janitor/gc-20260101T000000Z-1.log',
  durationSeconds: 7,
};

const inventorySummary = (tags: number) =>
  JSON.stringify({
    registryJanitor: 1,
    action: 'inventory',
    status: 'done',
    repositories: 1,
    revisions: 1,
    tags,
    ignored: 0,
    durationSeconds: 1,
  });

/** Inventory lines for one repository with `tags` tags: well past 24,000 characters for a few hundred. */
function inventoryLines(tags: number): string {
  const hex = 'a'.repeat(64);
  const lines = ['R team/app', `V ${hex} 1767225600`];
  for (let n = 0; n < tags; n += 1) lines.push(`T build-${String(n).padStart(6, '0')} ${hex} 1767225600`);
  return `${lines.join('\n')}\n`;
}

function fakeClock() {
  let time = 1_000_000;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => time,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      time += ms;
    },
  };
}

const invocation = (
  fields: Partial<GetCommandInvocationCommandOutput>,
): GetCommandInvocationCommandOutput => ({
  $metadata: {},
  CommandId: COMMAND_ID,
  InstanceId: INSTANCE,
  DocumentName: 'AWS-RunShellScript',
  PluginName: 'aws:runShellScript',
  ...fields,
});

const notYet = () => new InvocationDoesNotExist({ message: 'invocation does not exist', $metadata: {} });

describe('SsmRunner against a mocked SSM', () => {
  const ssm = new SSMClient({ region: 'eu-west-1' });
  const s3 = new S3Client({ region: 'eu-west-1' });
  const ssmMock = mockClient(ssm);
  const s3Mock = mockClient(s3);
  let clock: ReturnType<typeof fakeClock>;

  const runner = (opts: Partial<SsmRunnerOptions> = {}) =>
    new SsmRunner({
      ssm,
      instanceId: INSTANCE,
      deadlineMs: 15 * 60_000,
      sleep: clock.sleep,
      now: clock.now,
      ...opts,
    });

  beforeEach(() => {
    ssmMock.reset();
    s3Mock.reset();
    clock = fakeClock();
    ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: COMMAND_ID } });
  });

  afterEach(() => {
    ssmMock.reset();
    s3Mock.reset();
  });

  it('waits out an invocation SSM does not know yet and one in progress, then reads the summary', async () => {
    ssmMock
      .on(GetCommandInvocationCommand)
      .rejectsOnce(notYet())
      .resolvesOnce(invocation({ Status: 'InProgress', StatusDetails: 'InProgress', ResponseCode: -1 }))
      .resolvesOnce(
        invocation({
          Status: 'Success',
          StatusDetails: 'Success',
          ResponseCode: 0,
          StandardOutputContent: `${JSON.stringify(collectSummary)}\n`,
        }),
      );

    const run = await runner({ executionTimeoutSeconds: 900 }).run('collect', { gcMode: 'online' });

    expect(run).toMatchObject({ state: 'finished', exitCode: 0, commandId: COMMAND_ID });
    expect(run.summary).toMatchObject({ action: 'collect', status: 'done', bytesFreed: 5000 });
    expect(run).not.toHaveProperty('reason');
    expect(clock.sleeps).toEqual([2000, 3000, 4500]);
    expect(ssmMock).toHaveReceivedCommandTimes(GetCommandInvocationCommand, 3);
    expect(ssmMock).toHaveReceivedCommandWith(GetCommandInvocationCommand, {
      CommandId: COMMAND_ID,
      InstanceId: INSTANCE,
    });
    expect(ssmMock).toHaveReceivedCommandExactlyOnceWith(SendCommandCommand, {
      InstanceIds: [INSTANCE],
      DocumentName: 'AWS-RunShellScript',
      TimeoutSeconds: 600,
      Parameters: expect.objectContaining({ executionTimeout: ['900'] }),
    });
    const sent = ssmMock.commandCalls(SendCommandCommand)[0]?.args[0].input;
    expect(sent?.Comment?.length).toBeLessThanOrEqual(100);
    expect(sent).not.toHaveProperty('OutputS3BucketName');
  });

  it('backs off to polls ten seconds apart at most', async () => {
    ssmMock.on(GetCommandInvocationCommand).resolves(invocation({ Status: 'InProgress', ResponseCode: -1 }));

    await runner({ deadlineMs: 120_000 }).run('collect', {});

    expect(clock.sleeps.slice(0, 5)).toEqual([2000, 3000, 4500, 6750, 10_000]);
    expect(Math.max(...clock.sleeps)).toBe(10_000);
    expect(clock.sleeps.reduce((a, b) => a + b, 0)).toBe(120_000);
  });

  it('reports a command SSM stopped for running too long as failed, and says so', async () => {
    ssmMock.on(GetCommandInvocationCommand).resolves(
      invocation({
        Status: 'TimedOut',
        StatusDetails: 'Execution Timed Out',
        ResponseCode: -1,
        StandardOutputContent: 'registry-janitor: 1 upload(s) in progress: waiting\n',
      }),
    );

    const run = await runner({ executionTimeoutSeconds: 900 }).run('collect', {});

    expect(run.state).toBe('finished');
    expect(run.summary).toBeUndefined();
    expect(run.exitCode).toBeUndefined();
    expect(run.ssmStatus).toBe('TimedOut (Execution Timed Out)');
    expect(run.reason).toMatch(/ran longer than its execution timeout \(900 s\) and SSM stopped it/);
  });

  it.each([
    ['TimedOut', 'Delivery Timed Out', /could not deliver the command to i-0123456789abcdef0 within 600 s/],
    ['Failed', 'Undeliverable', /could not deliver the command .*SSM Agent is not registered/],
    ['Failed', 'Terminated', /terminated the invocation/],
    ['Failed', 'Invalid Platform', /needs a Linux instance/],
    ['Failed', 'Access Denied', /SSM denied running the document/],
    ['Cancelled', 'Cancelled', /cancelled before the host script finished/],
    ['Cancelling', 'Cancelling', /is being cancelled/],
  ] as const)('explains a %s (%s) invocation', async (status, details, reason) => {
    ssmMock
      .on(GetCommandInvocationCommand)
      .resolves(invocation({ Status: status, StatusDetails: details, ResponseCode: -1 }));

    const run = await runner().run('collect', {});

    expect(run.state).toBe('finished');
    expect(run.reason).toMatch(reason);
  });

  it('keeps the exit code and the summary of a script that failed', async () => {
    const failed = { ...collectSummary, status: 'failed', reason: 'garbage collection failed: see the log' };
    ssmMock.on(GetCommandInvocationCommand).resolves(
      invocation({
        Status: 'Failed',
        StatusDetails: 'Failed',
        ResponseCode: 1,
        StandardOutputContent: `${JSON.stringify(failed)}\n`,
      }),
    );

    const run = await runner().run('collect', {});

    expect(run).toMatchObject({ state: 'finished', exitCode: 1 });
    expect(run.summary).toMatchObject({ status: 'failed', reason: 'garbage collection failed: see the log' });
  });

  it('says what the script wrote to stderr when it printed no summary', async () => {
    ssmMock.on(GetCommandInvocationCommand).resolves(
      invocation({
        Status: 'Failed',
        StatusDetails: 'Failed',
        ResponseCode: 2,
        StandardErrorContent: 'registry-janitor: SSM_action is not set: update the agent\n',
      }),
    );

    const run = await runner({ documentName: 'RegistryJanitor-Maintenance' }).run('collect', {});

    expect(run.exitCode).toBe(2);
    expect(run.reason).toMatch(/printed no summary line; its stderr ends with: .*SSM_action is not set/);
  });

  describe('when SSM cut the output at 24,000 characters', () => {
    const full = `${inventoryLines(400)}${inventorySummary(400)}\n`;
    const cut = full.slice(0, 24_000);
    const keyOfRunShellScript = `${PREFIX}/${COMMAND_ID}/${INSTANCE}/awsrunShellScript/0.awsrunShellScript/stdout`;

    beforeEach(() => {
      expect(cut).toHaveLength(24_000);
      expect(cut).not.toContain('"registryJanitor"');
    });

    it('without an output bucket, says to configure one', async () => {
      ssmMock.on(GetCommandInvocationCommand).resolves(
        invocation({
          Status: 'Success',
          StatusDetails: 'Success',
          ResponseCode: 0,
          StandardOutputContent: cut,
        }),
      );

      const run = await runner().run('inventory', {});

      expect(run).toMatchObject({ state: 'finished', exitCode: 0 });
      expect(run.summary).toBeUndefined();
      expect(run.output).toBeUndefined();
      expect(run.reason).toMatch(/first 24,000 characters .* configure an output bucket \(outputBucket\)/);
    });

    it('with an output bucket, reads the whole output from S3', async () => {
      ssmMock.on(GetCommandInvocationCommand).resolves(
        invocation({
          Status: 'Success',
          StatusDetails: 'Success',
          ResponseCode: 0,
          StandardOutputContent: cut,
        }),
      );
      s3Mock.on(GetObjectCommand).callsFake(() => ({
        Body: Readable.from([
          Buffer.from(full.slice(0, 10_000)),
          Buffer.from(full.slice(10_000)),
        ]) as unknown as GetObjectCommandOutput['Body'],
      }));

      const run = await runner({ s3, outputBucket: BUCKET, outputPrefix: PREFIX }).run('inventory', {});

      expect(run.summary).toMatchObject({ action: 'inventory', status: 'done', tags: 400 });
      expect(run.output).toBe(inventoryLines(400));
      expect(run).not.toHaveProperty('reason');
      expect(ssmMock).toHaveReceivedCommandWith(SendCommandCommand, {
        OutputS3BucketName: BUCKET,
        OutputS3KeyPrefix: PREFIX,
      });
      expect(s3Mock).toHaveReceivedCommandExactlyOnceWith(GetObjectCommand, {
        Bucket: BUCKET,
        Key: keyOfRunShellScript,
      });
    });

    it('with a custom document, reads the step output where StandardOutputUrl points', async () => {
      const key = `${PREFIX}/${COMMAND_ID}/${INSTANCE}/awsrunShellScript/runMaintenance/stdout`;
      ssmMock.on(GetCommandInvocationCommand).resolves(
        invocation({
          DocumentName: 'RegistryJanitor-Maintenance',
          PluginName: 'runMaintenance',
          Status: 'Success',
          StatusDetails: 'Success',
          ResponseCode: 0,
          StandardOutputContent: cut,
          StandardOutputUrl: `https://${BUCKET}.s3.eu-west-1.amazonaws.com/${key}`,
        }),
      );
      s3Mock.on(GetObjectCommand).callsFake(() => ({
        Body: Readable.from([Buffer.from(full)]) as unknown as GetObjectCommandOutput['Body'],
      }));

      const run = await runner({
        s3,
        outputBucket: BUCKET,
        outputPrefix: PREFIX,
        documentName: 'RegistryJanitor-Maintenance',
      }).run('inventory', {});

      expect(run.summary).toMatchObject({ tags: 400 });
      expect(s3Mock).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: BUCKET, Key: key });
    });

    it('says which permission is missing when the output never reached the bucket', async () => {
      ssmMock.on(GetCommandInvocationCommand).resolves(
        invocation({
          Status: 'Success',
          StatusDetails: 'Success',
          ResponseCode: 0,
          StandardOutputContent: cut,
        }),
      );
      s3Mock
        .on(GetObjectCommand)
        .rejects(Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey' }));

      const run = await runner({ s3, outputBucket: BUCKET, outputPrefix: PREFIX }).run('inventory', {});

      expect(run).toMatchObject({ state: 'finished', exitCode: 0 });
      expect(run.summary).toBeUndefined();
      expect(run.reason).toMatch(
        /instance profile needs s3:PutObject on arn:aws:s3:::janitor-ssm-output\/registry-janitor\/ssm\*/,
      );
      expect(s3Mock).toHaveReceivedCommandTimes(GetObjectCommand, 4);
    });
  });

  it('answers `running` with the command id at the deadline, and resume() picks up the result later', async () => {
    ssmMock.on(GetCommandInvocationCommand).resolves(invocation({ Status: 'InProgress', ResponseCode: -1 }));
    const first = runner({ deadlineMs: 30_000 });

    const pending = await first.run('collect', {});

    expect(pending).toMatchObject({ state: 'running', commandId: COMMAND_ID, ssmStatus: 'InProgress' });
    expect(clock.sleeps.reduce((a, b) => a + b, 0)).toBe(30_000);

    ssmMock.on(GetCommandInvocationCommand).resolves(
      invocation({
        Status: 'Success',
        StatusDetails: 'Success',
        ResponseCode: 0,
        StandardOutputContent: `${JSON.stringify(collectSummary)}\n`,
      }),
    );
    const later = runner({ deadlineMs: 30_000 });

    const resumed = await later.resume(COMMAND_ID);

    expect(resumed).toMatchObject({ state: 'finished', exitCode: 0, commandId: COMMAND_ID });
    expect(resumed.summary).toMatchObject({ bytesFreed: 5000 });
    expect(ssmMock).toHaveReceivedCommandTimes(SendCommandCommand, 1);
  });

  it('refuses to resume something that is not a command id', async () => {
    await expect(runner().resume('$(reboot)')).rejects.toMatchObject({
      name: 'SsmRunnerError',
      code: 'RJ_SSM_UNKNOWN_COMMAND',
    });
    expect(ssmMock).not.toHaveReceivedCommand(GetCommandInvocationCommand);
  });

  it('gives up on a command SSM never heard of', async () => {
    ssmMock.on(GetCommandInvocationCommand).rejects(notYet());

    await expect(runner().resume(COMMAND_ID)).rejects.toMatchObject({
      code: 'RJ_SSM_UNKNOWN_COMMAND',
      message: expect.stringMatching(/knows no invocation of command .* on i-0123456789abcdef0/),
    });
  });

  it('says which permission SendCommand lacks', async () => {
    const denied = new AccessDeniedException({
      message: 'not authorized to perform: ssm:SendCommand',
      Message: 'not authorized to perform: ssm:SendCommand',
      $metadata: {},
    });
    ssmMock.on(SendCommandCommand).rejects(denied);

    const error = await runner({ documentName: 'RegistryJanitor-Maintenance' })
      .run('collect', {})
      .catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'SsmRunnerError', code: 'RJ_SSM_ACCESS_DENIED', cause: denied });
    expect((error as Error).message).toBe(
      'SendCommand was denied (AccessDeniedException: not authorized to perform: ssm:SendCommand): the role needs ssm:SendCommand on all of the document RegistryJanitor-Maintenance (arn:aws:ssm:<region>:<account>:document/RegistryJanitor-Maintenance); the instance arn:aws:ec2:<region>:<account>:instance/i-0123456789abcdef0. One of these grants is missing, or a permissions boundary or service control policy denies it',
    );
  });

  it('names the output bucket among the grants SendCommand needs when the output goes to S3', async () => {
    const denied = new AccessDeniedException({
      message: 'not authorized to perform: ssm:SendCommand on resource: arn:aws:s3:::janitor-output',
      Message: 'not authorized to perform: ssm:SendCommand on resource: arn:aws:s3:::janitor-output',
      $metadata: {},
    });
    ssmMock.on(SendCommandCommand).rejects(denied);

    const error = await runner({
      documentName: 'RegistryJanitor-Maintenance',
      outputBucket: 'janitor-output',
      s3,
    })
      .run('inventory', {})
      .catch((e: unknown) => e);

    expect(error).toMatchObject({ code: 'RJ_SSM_ACCESS_DENIED', cause: denied });
    const message = (error as Error).message;
    expect(message).toContain(
      'the document RegistryJanitor-Maintenance (arn:aws:ssm:<region>:<account>:document/RegistryJanitor-Maintenance)',
    );
    expect(message).toContain('the instance arn:aws:ec2:<region>:<account>:instance/i-0123456789abcdef0');
    expect(message).toContain('the output bucket arn:aws:s3:::janitor-output');
  });

  it('says why SSM cannot reach an instance', async () => {
    ssmMock
      .on(SendCommandCommand)
      .rejects(new InvalidInstanceId({ message: 'Instances not in a valid state', $metadata: {} }));

    await expect(runner().run('collect', {})).rejects.toMatchObject({
      code: 'RJ_SSM_INSTANCE',
      message: expect.stringMatching(/not a managed node .* SSM Agent is not running/),
    });
  });

  it('lists every bad option at once', () => {
    expect(() =>
      runner({
        instanceId: 'i-xyz; reboot',
        documentName: 'a',
        outputPrefix: 'logs',
        deadlineMs: -1,
        executionTimeoutSeconds: 0,
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'RJ_SSM_INVALID_OPTIONS',
        message: expect.stringMatching(
          /instanceId: .*\n {2}documentName: .*\n {2}outputPrefix: only with outputBucket\n {2}deadlineMs: .*\n {2}executionTimeoutSeconds: /,
        ),
      }),
    );
  });

  describe('the command text', () => {
    const word = fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,11}$/).filter((w) => !w.includes('..'));
    const path = fc.array(word, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
    const validParams: fc.Arbitrary<HostParams> = fc.record(
      {
        container: fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,40}$/),
        registryBinary: path,
        registryConfig: path,
        storageRoot: path,
        gcMode: fc.constantFrom('online' as const, 'stopped' as const),
        restart: fc.boolean(),
        registryPort: fc.integer({ min: 1, max: 65_535 }),
        uploadWaitSeconds: fc.integer({ min: 0, max: 99_999 }),
        uploadRecentMinutes: fc.integer({ min: 0, max: 99_999 }),
        pollSeconds: fc.integer({ min: 1, max: 999 }),
        readySeconds: fc.integer({ min: 0, max: 99_999 }),
        lockFile: path,
        logDir: path,
      },
      { requiredKeys: [] },
    );
    const action = fc.constantFrom<HostAction>('inventory', 'collect');
    const hostile = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.constantFrom(
        '$(reboot)',
        '`id`',
        "x'; rm -rf / #",
        'a\nrm -rf /',
        '{{ container }}',
        '{{commands}}',
        'sha256:$(curl evil)',
        'team/app;reboot',
      ),
    );
    /** What the registry hands the janitor: names, tags and digests it never checks. */
    const registryValues = fc.record({
      repository: hostile,
      tag: hostile,
      digest: hostile,
      comment: hostile,
    });

    it('is the script text after the validated assignments, whatever the registry holds', async () => {
      await fc.assert(
        fc.asyncProperty(action, validParams, registryValues, async (act, params, fromRegistry) => {
          ssmMock.resetHistory();
          ssmMock
            .on(GetCommandInvocationCommand)
            .resolves(invocation({ Status: 'Success', ResponseCode: 0 }));
          const withRegistryValues = { ...params, ...fromRegistry } as HostParams;

          await runner({ commentPrefix: fromRegistry.comment }).run(act, withRegistryValues);

          const sent = ssmMock.commandCalls(SendCommandCommand)[0]?.args[0].input as SendCommandCommandInput;
          const expected = Object.entries(hostEnvironment(act, params)).map(
            ([name, value]) => `export ${name}='${value}'`,
          );
          expect(sent.Parameters?.commands).toEqual([...expected, maintenanceScript()]);
          expect(sent.Parameters?.commands?.join('\n')).toBe(
            `${expected.join('\n')}\n${maintenanceScript()}`,
          );
          for (const line of expected) expect(line).toMatch(/^export RJ_[A-Z_]+='[A-Za-z0-9._/-]*'$/);
          expect(Object.keys(sent.Parameters ?? {}).sort()).toEqual(['commands']);
        }),
        { numRuns: 150 },
      );
    });

    it('through the custom document is fixed; only validated parameter values travel', async () => {
      const names = new Set(documentParameters().map((p) => p.name));
      await fc.assert(
        fc.asyncProperty(action, validParams, registryValues, async (act, params, fromRegistry) => {
          ssmMock.resetHistory();
          ssmMock
            .on(GetCommandInvocationCommand)
            .resolves(invocation({ Status: 'Success', ResponseCode: 0 }));

          await runner({ documentName: 'RegistryJanitor-Maintenance' }).run(act, {
            ...params,
            ...fromRegistry,
          } as HostParams);

          const sent = ssmMock.commandCalls(SendCommandCommand)[0]?.args[0].input as SendCommandCommandInput;
          const environment = hostEnvironment(act, params);
          const byVariable = new Map(documentParameters().map((p) => [p.scriptVariable, p]));
          const expected = Object.fromEntries(
            Object.entries(environment).map(([variable, value]) => [byVariable.get(variable)?.name, [value]]),
          );
          expect(sent.Parameters).toEqual(expected);
          for (const name of Object.keys(sent.Parameters ?? {})) expect(names.has(name)).toBe(true);
          for (const p of documentParameters()) {
            const value = sent.Parameters?.[p.name]?.[0];
            if (value !== undefined) expect(value).toMatch(new RegExp(p.allowedPattern));
          }
        }),
        { numRuns: 150 },
      );
    });

    const metacharacter = fc.constantFrom(
      ';',
      '|',
      '&',
      '$(',
      '`',
      "'",
      '"',
      '\n',
      '\r',
      '\t',
      ' ',
      '\\',
      '>',
      '<',
      '*',
      '?',
      '{',
      '}',
      '(',
      ')',
      '#',
      '~',
      '!',
      '%',
      '=',
      '\u0000',
      '\u00a0',
    );
    const stringField = fc.constantFrom<keyof HostParams>(
      'container',
      'registryBinary',
      'registryConfig',
      'storageRoot',
      'lockFile',
      'logDir',
      'gcMode',
    );
    const hostileValue = fc
      .tuple(
        fc.constantFrom('registry', '/var/lib/registry', 'online', ''),
        metacharacter,
        fc.string({ maxLength: 12 }),
      )
      .map(([valid, bad, rest]) => `${valid}${bad}${rest}`);
    const numberField = fc.constantFrom<keyof HostParams>(
      'registryPort',
      'uploadWaitSeconds',
      'uploadRecentMinutes',
      'pollSeconds',
      'readySeconds',
    );
    const badNumber = fc.oneof(
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -1, 1.5, 1e9),
      fc.constantFrom('5000; reboot', '$(id)', '1\n2') as fc.Arbitrary<unknown>,
    );
    const invalid = fc.oneof(
      fc.tuple(stringField, hostileValue as fc.Arbitrary<unknown>),
      fc.tuple(numberField, badNumber),
      fc.tuple(fc.constant<keyof HostParams>('restart'), fc.constantFrom<unknown>('yes', 'true; reboot', 1)),
    );

    it.each([
      ['AWS-RunShellScript', undefined],
      ['the custom document', 'RegistryJanitor-Maintenance'],
    ])(
      'rejects metacharacters, newlines, quotes and substitutions before calling SSM (%s)',
      async (_, documentName) => {
        await fc.assert(
          fc.asyncProperty(action, validParams, invalid, async (act, params, [field, value]) => {
            ssmMock.resetHistory();
            const bad = { ...params, [field]: value } as HostParams;

            await expect(runner(documentName ? { documentName } : {}).run(act, bad)).rejects.toMatchObject({
              name: 'HostParameterError',
              message: expect.stringContaining(`${field} (RJ_`),
            });

            expect(ssmMock).not.toHaveReceivedCommand(SendCommandCommand);
          }),
          { numRuns: 200 },
        );
      },
    );
  });
});

describe('the custom document', () => {
  it('maps each SSM_<name> variable onto the variable the script reads, then runs the script verbatim', () => {
    const commands = documentCommands();

    expect(commands.at(-1)).toBe(maintenanceScript());
    for (const p of documentParameters()) {
      expect(p.envVar).toBe(`SSM_${p.name}`);
      expect(commands).toContain(
        `if [ -n "\${SSM_${p.name}:-}" ]; then export ${p.scriptVariable}="$SSM_${p.name}"; fi`,
      );
    }
    expect(commands.slice(0, -1).join('\n')).not.toMatch(/{{/);
  });

  it('declares every parameter as an environment variable with the script’s own pattern', () => {
    const content = documentContent() as {
      parameters: Record<string, { interpolationType?: string; allowedPattern: string; default?: string }>;
      mainSteps: { name: string; inputs: { runCommand: string[] } }[];
    };

    expect(content.mainSteps[0]?.name).toBe('runMaintenance');
    expect(content.mainSteps[0]?.inputs.runCommand).toEqual(documentCommands());
    for (const p of documentParameters()) {
      expect(content.parameters[p.name]).toMatchObject({
        interpolationType: 'ENV_VAR',
        allowedPattern: p.allowedPattern,
      });
    }
    expect(content.parameters.action).not.toHaveProperty('default');
    expect(content.parameters.executionTimeout).toMatchObject({ default: '3600' });
  });
});

describe('SsmRunner running the host script for real through a fake SSM', () => {
  const DOCUMENT = 'RegistryJanitor-Maintenance';
  let reg: TestRegistry;
  let standIn: DockerStandIn;
  let fake: SsmFake;
  let work: string;
  let hostParams: HostParams;

  beforeAll(async () => {
    reg = await startRegistry();
    standIn = await installDockerStandIn(reg);
    fake = await createSsmFake({
      instanceId: INSTANCE,
      env: standIn.env,
      documents: { [DOCUMENT]: fakeDocument(documentContent()) },
    });
    work = await mkdtemp(join(tmpdir(), 'ssm-runner-host-'));
    hostParams = {
      lockFile: join(work, 'janitor.lock'),
      logDir: join(work, 'logs'),
      pollSeconds: 1,
      readySeconds: 30,
    };
  });

  afterAll(async () => {
    await fake?.close();
    await standIn?.close();
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const runner = (opts: Partial<SsmRunnerOptions> = {}) =>
    new SsmRunner({ ssm: fake.ssm, instanceId: INSTANCE, deadlineMs: 120_000, sleep: fake.sleep, ...opts });

  /** A kept image and a deleted one whose layers only the garbage collector can remove. */
  async function leaveGarbage(repository: string) {
    const kept = await pushImage(reg, repository, 'stable', { layerSizes: [2048] });
    const doomed = await pushImage(reg, repository, 'old', { layerSizes: [4096, 8192] });
    expect(await deleteManifest(reg, repository, doomed.digest)).toBe(202);
    return { kept, doomed };
  }

  const paths: [string, { documentName?: string }][] = [
    ['AWS-RunShellScript', {}],
    ['the custom document', { documentName: DOCUMENT }],
  ];

  it.each(paths)(
    'collects garbage through %s and reports the bytes that left the disk',
    async (_, options) => {
      const repository = options.documentName ? 'team/by-document' : 'team/by-shell-script';
      const { kept, doomed } = await leaveGarbage(repository);
      const before = await blobSizes(reg);

      const run = await runner(options).run('collect', hostParams);

      const after = await blobSizes(reg);
      expect(run).toMatchObject({ state: 'finished', exitCode: 0 });
      expect(run.summary).toMatchObject({ action: 'collect', status: 'done', restarted: true });
      expect(run.summary?.bytesFreed).toBe(freedBytes(before, after));
      for (const layer of doomed.layers) expect(after.has(layer.digest)).toBe(false);
      expect(await headManifest(reg, repository, 'stable')).toBe(kept.digest);
      const sent = fake.commands().at(-1);
      expect(sent?.input.DocumentName).toBe(options.documentName ?? 'AWS-RunShellScript');
      expect(sent?.script.endsWith(`${maintenanceScript()}\n`)).toBe(true);
    },
  );

  describe('an inventory longer than SSM keeps', () => {
    const TAGS = 320;

    beforeAll(async () => {
      const image = await pushImage(reg, 'big/inventory', 'build-0', {});
      for (let n = 1; n < TAGS; n += 1) {
        await putManifest(reg, 'big/inventory', `build-${n}`, image.mediaType, image.manifest);
      }
    });

    it('without an output bucket, has no summary and says to configure one', async () => {
      const run = await runner({ documentName: DOCUMENT }).run('inventory', hostParams);

      expect(fake.commands().at(-1)?.stdout.length).toBeGreaterThan(SSM_STDOUT_LIMIT);
      expect(run).toMatchObject({ state: 'finished', exitCode: 0 });
      expect(run.summary).toBeUndefined();
      expect(run.reason).toMatch(/configure an output bucket/);
    });

    it.each(paths)('with an output bucket, reads all of it from S3 (%s)', async (_, options) => {
      const run = await runner({ ...options, s3: fake.s3, outputBucket: BUCKET, outputPrefix: PREFIX }).run(
        'inventory',
        hostParams,
      );

      expect(run).toMatchObject({ state: 'finished', exitCode: 0 });
      expect(run.summary).toMatchObject({ action: 'inventory', status: 'done' });
      const tagLines = run.output?.split('\n').filter((line) => line.startsWith('T build-')) ?? [];
      expect(tagLines).toHaveLength(TAGS);
      expect(run.summary?.tags).toBeGreaterThanOrEqual(TAGS);
    });
  });
});
