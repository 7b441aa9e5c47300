import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cdkJsonContext, DEPLOYMENT_CONTEXT, SKIP_BUNDLING } from './stacks.js';

const PROJECT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = (name: string) => fileURLToPath(new URL(`../../node_modules/.bin/${name}`, import.meta.url));

interface Exit {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function exit(command: string, args: string[], env: Record<string, string> = {}): Promise<Exit> {
  try {
    const { stdout, stderr } = await promisify(execFile)(command, args, {
      cwd: PROJECT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      timeout: 90_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === 'number' ? failed.code : -1,
      stdout: failed.stdout ?? '',
      stderr: failed.stderr ?? '',
    };
  }
}

/** infra/app.ts as the CLI runs it, with the context the CLI would hand over. */
const app = (context: Record<string, unknown>) =>
  exit(BIN('tsx'), ['infra/app.ts'], { CDK_CONTEXT_JSON: JSON.stringify(context) });

const noStackTrace = (text: string) => expect(text).not.toMatch(/^\s+at /m);

describe('the CDK app', () => {
  it('refuses cdk.json as shipped with exit code 2, naming each key to set, without a stack trace', async () => {
    const result = await app(cdkJsonContext());

    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      [
        'registry-janitor: the cdk.json context is not usable:',
        '- registryUrl: "https://registry.example.internal:5000" is the placeholder cdk.json ships with: set the address the function reaches the registry at: http:// or https://, a host and a port, no path, e.g. https://registry.internal:5000',
        '- instanceId: "i-0123456789abcdef0" is the placeholder cdk.json ships with: set the id of the EC2 instance that runs the registry container, e.g. i-0abc1234def567890',
        "- instanceRoleArn: required: the ARN of the registry instance's IAM role (the role in its instance profile), which is allowed to write command output to the stack's bucket, e.g. arn:aws:iam::123456789012:role/registry-host",
        'Set the values in cdk.json or with -c key=value.',
        '',
      ].join('\n'),
    );
  }, 100_000);

  it('reports every bad value at once under its context key, never under the variable the function reads', async () => {
    const result = await app({
      ...cdkJsonContext(),
      ...DEPLOYMENT_CONTEXT,
      stackName: 'registry janitor',
      registryUrl: 'registry.internal:5000',
      policy: '{"defaults":{"keepLast":"ten"}}',
      timeZone: 'Mars/Olympus',
      registrySecret: 'my secret!',
    });

    expect(result.code).toBe(2);
    const problems = result.stderr.split('\n').filter((line) => line.startsWith('- '));
    expect(problems.map((line) => line.slice(2, line.indexOf(':')))).toEqual([
      'stackName',
      'registryUrl',
      'registrySecret',
      'timeZone',
      'policy',
    ]);
    expect(result.stderr).toContain('got "registry.internal:5000"');
    expect(result.stderr).not.toMatch(/REGISTRY_URL|POLICY_JSON|RJ_/);
    noStackTrace(result.stderr);
  }, 100_000);

  it('builds the stack from a usable context and exits 0', async () => {
    const result = await app({ ...cdkJsonContext(), ...DEPLOYMENT_CONTEXT, ...SKIP_BUNDLING });

    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
  }, 100_000);

  it('fails `cdk synth` with the problems of the -c values, as the CLI hands them over', async () => {
    const result = await exit(BIN('cdk'), [
      'synth',
      '--no-notices',
      '--no-version-reporting',
      '-c',
      `instanceRoleArn=${DEPLOYMENT_CONTEXT.instanceRoleArn}`,
      '-c',
      `registryUrl=${DEPLOYMENT_CONTEXT.registryUrl}`,
      '-c',
      `instanceId=${DEPLOYMENT_CONTEXT.instanceId}`,
      '-c',
      'timeZone=Mars/Olympus',
      '-c',
      'registrySecret=my secret!',
      '-c',
      'vpcId=vpc-0123456789abcdef0',
      '-c',
      'subnetIds=["subnet-0aaaaaaaaaaaaaaaa","subnet-…"]',
    ]);

    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      '- registrySecret: expected a Secrets Manager secret\'s name (1 to 512 letters, digits and / _ + = . @ -) or its ARN, got "my secret!"',
    );
    expect(result.stderr).toContain(
      '- timeZone: expected an IANA time zone such as Europe/Berlin, America/New_York or UTC, got "Mars/Olympus"',
    );
    expect(result.stderr).toContain(
      '- subnetIds: expected each item to be a subnet id such as subnet-0123456789abcdef0, got "subnet-…"',
    );
    expect(result.stderr).not.toContain('subnet-0aaaaaaaaaaaaaaaa,');
    noStackTrace(result.stderr);
  }, 100_000);
});
