import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseEvent } from '../../lambda/aws/events.js';
import { sampleEvent } from './events.js';

describe('the sample events in events/', () => {
  it('ships one for each way the function is invoked', () => {
    const names = readdirSync(new URL('../../events/', import.meta.url)).sort();

    expect(names).toEqual([
      'disk-alarm.json',
      'dry-run.json',
      'keep-last.json',
      'no-gc.json',
      'one-repository.json',
      'schedule.json',
      'ssm-status-change.json',
      'untagged-only.json',
    ]);
  });

  it.each([
    ['schedule', { kind: 'schedule' }],
    ['dry-run', { kind: 'manual', overrides: { dryRun: true } }],
    ['one-repository', { kind: 'manual', overrides: { repositories: ['web/app'] } }],
    ['keep-last', { kind: 'manual', overrides: { keepLast: 5 } }],
    ['no-gc', { kind: 'manual', overrides: { gc: false } }],
    ['untagged-only', { kind: 'manual', overrides: { untaggedOnly: true } }],
    [
      'disk-alarm',
      {
        kind: 'alarm',
        alarmName: 'RegistryJanitor-registry-disk-used',
        state: 'ALARM',
        reason: expect.stringMatching(/^Threshold Crossed/),
      },
    ],
    [
      'ssm-status-change',
      {
        kind: 'command-status',
        commandId: '0b5f2c1e-1111-2222-3333-444455556666',
        status: 'Success',
        documentName: 'RegistryJanitor-Maintenance',
        action: 'collect',
      },
    ],
  ])('%s is accepted as what it says', (name, parsed) => {
    expect(parseEvent(sampleEvent(name))).toEqual(parsed);
  });
});
