import 'aws-sdk-client-mock-vitest/extend';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { PENDING_KEY, S3History } from '../../lambda/aws/history.js';
import type { PendingCollection } from '../../lambda/ports.js';
import { succeededReport } from './report-fixtures.js';

const BUCKET = 'janitor-output';
const record: PendingCollection = {
  commandId: '0b5f2c1e-1111-2222-3333-444455556666',
  startedAt: '2026-01-01T03:00:00.000Z',
  requestId: 'req-1',
  registry: 'https://registry.internal:5000',
  keptTags: [{ repository: 'web/app', tag: 'v3' }],
};
const body = (text: string) =>
  Readable.from([Buffer.from(text)]) as unknown as GetObjectCommandOutput['Body'];

describe('run history in the output bucket', () => {
  const s3 = new S3Client({ region: 'eu-west-1' });
  const mock = mockClient(s3);
  const history = new S3History({ s3, bucket: BUCKET });
  afterEach(() => mock.reset());

  it('saves each report as JSON under runs/<time>-<request id>.json, its page beside it as HTML, and says where', async () => {
    mock.on(PutObjectCommand).resolves({});
    const report = succeededReport({ requestId: 'c0ffee-1', problems: ['<b>not bold</b>'] });

    const location = await history.save(report);

    expect(location).toEqual({
      report: `s3://${BUCKET}/runs/2026-01-01T03:00:00.000Z-c0ffee-1.json`,
      page: `s3://${BUCKET}/runs/2026-01-01T03:00:00.000Z-c0ffee-1.html`,
    });
    const [json, page] = mock.commandCalls(PutObjectCommand).map((call) => call.args[0].input);
    expect(json).toMatchObject({
      Bucket: BUCKET,
      Key: 'runs/2026-01-01T03:00:00.000Z-c0ffee-1.json',
      ContentType: 'application/json',
    });
    expect(JSON.parse(String(json?.Body))).toEqual(report);
    expect(page).toMatchObject({
      Bucket: BUCKET,
      Key: 'runs/2026-01-01T03:00:00.000Z-c0ffee-1.html',
      ContentType: 'text/html; charset=utf-8',
    });
    expect(String(page?.Body)).toContain(`<p class="headline">${report.headline}</p>`);
    expect(String(page?.Body)).toContain('<li>&lt;b&gt;not bold&lt;/b&gt;</li>');
  });

  it('writes, reads back and removes the pending-collection record', async () => {
    mock.on(PutObjectCommand).resolves({});
    mock.on(DeleteObjectCommand).resolves({});
    mock.on(GetObjectCommand, { Key: PENDING_KEY }).resolves({ Body: body(JSON.stringify(record)) });

    await history.write(record);
    const read = await history.read();
    await history.write(undefined);

    expect(mock).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: BUCKET, Key: 'runs/pending.json' });
    expect(read).toEqual(record);
    expect(mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Bucket: BUCKET, Key: 'runs/pending.json' });
  });

  it('reads no record when there is none', async () => {
    mock
      .on(GetObjectCommand)
      .rejects(new NoSuchKey({ message: 'The specified key does not exist.', $metadata: {} }));

    expect(await history.read()).toBeUndefined();
  });

  it('refuses a record that is not one, and says how to start over', async () => {
    mock.on(GetObjectCommand).resolves({ Body: body(JSON.stringify({ ...record, commandId: '$(reboot)' })) });

    await expect(history.read()).rejects.toMatchObject({
      name: 'HistoryError',
      message: expect.stringMatching(
        /^s3:\/\/janitor-output\/runs\/pending\.json is not a pending-collection record \(.*\): delete it/,
      ),
    });
  });

  it('says which permission is missing', async () => {
    mock.on(PutObjectCommand).rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));

    await expect(history.save(succeededReport())).rejects.toThrow(
      `writing s3://${BUCKET}/runs/2026-01-01T03:00:00.000Z-req-1.json failed (AccessDenied: Access Denied): the function role needs s3:PutObject on it`,
    );
  });
});
