import 'aws-sdk-client-mock-vitest/extend';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LEASE_KEY, S3RunLease } from '../../lambda/aws/lease.js';
import type { LeaseRecord } from '../../lambda/ports.js';

const BUCKET = 'janitor-output';
const NOW = Date.parse('2026-01-01T03:00:00.000Z');
const mine: LeaseRecord = {
  requestId: 'req-2',
  acquiredAt: '2026-01-01T03:00:00.000Z',
  expiresAt: '2026-01-01T03:15:00.000Z',
};
const theirs: LeaseRecord = {
  requestId: 'req-1',
  acquiredAt: '2026-01-01T02:55:00.000Z',
  expiresAt: '2026-01-01T03:10:00.000Z',
};

const refused = (name: 'PreconditionFailed' | 'ConditionalRequestConflict', status: number) =>
  new S3ServiceException({
    name,
    $fault: 'client',
    message:
      name === 'PreconditionFailed'
        ? 'At least one of the pre-conditions you specified did not hold'
        : 'conflict',
    $metadata: { httpStatusCode: status },
  });

const stored = (record: unknown, etag: string) => ({
  ETag: etag,
  Body: Readable.from([Buffer.from(JSON.stringify(record))]) as unknown as GetObjectCommandOutput['Body'],
});

describe('the run lease in the output bucket', () => {
  const s3 = new S3Client({ region: 'eu-west-1' });
  const mock = mockClient(s3);
  const lease = new S3RunLease({ s3, bucket: BUCKET, now: () => NOW });
  beforeEach(() => mock.reset());
  afterEach(() => mock.reset());

  it('is taken by creating the object only if there is none, and given back only if it is still the one written', async () => {
    mock.on(PutObjectCommand).resolves({ ETag: '"e1"' });
    mock.on(DeleteObjectCommand).resolves({});

    const outcome = await lease.acquire(mine);
    if (!outcome.acquired) throw new Error('the lease was not taken');
    await outcome.release();

    expect(mock).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: BUCKET,
      Key: LEASE_KEY,
      IfNoneMatch: '*',
    });
    const body = JSON.parse(String(mock.commandCalls(PutObjectCommand)[0]?.args[0].input.Body));
    expect(body).toEqual(mine);
    expect(mock).toHaveReceivedCommandWith(DeleteObjectCommand, {
      Bucket: BUCKET,
      Key: LEASE_KEY,
      IfMatch: '"e1"',
    });
    expect(outcome).not.toHaveProperty('replaced');
  });

  it.each([
    ['PreconditionFailed', 412],
    ['ConditionalRequestConflict', 409],
  ] as const)('is not taken while another run holds it (%s)', async (name, status) => {
    mock.on(PutObjectCommand, { IfNoneMatch: '*' }).rejects(refused(name, status));
    mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(stored(theirs, '"e0"'));

    const outcome = await lease.acquire(mine);

    expect(outcome).toEqual({ acquired: false, heldBy: theirs });
    expect(mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  });

  it('replaces a lease whose run was stopped before giving it back, only if nobody replaced it first', async () => {
    const expired = { ...theirs, expiresAt: '2026-01-01T02:59:59.000Z' };
    mock.on(PutObjectCommand, { IfNoneMatch: '*' }).rejects(refused('PreconditionFailed', 412));
    mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(stored(expired, '"e0"'));
    mock.on(PutObjectCommand, { IfMatch: '"e0"' }).resolves({ ETag: '"e2"' });
    mock.on(DeleteObjectCommand).resolves({});

    const outcome = await lease.acquire(mine);
    if (!outcome.acquired) throw new Error('the lease was not taken');
    await outcome.release();

    expect(outcome.replaced).toEqual(expired);
    expect(mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Key: LEASE_KEY, IfMatch: '"e2"' });
  });

  it('loses to the invocation that replaced an expired lease first', async () => {
    mock.on(PutObjectCommand, { IfNoneMatch: '*' }).rejects(refused('PreconditionFailed', 412));
    mock
      .on(GetObjectCommand, { Key: LEASE_KEY })
      .resolves(stored({ ...theirs, expiresAt: '2026-01-01T02:00:00.000Z' }, '"e0"'));
    mock.on(PutObjectCommand, { IfMatch: '"e0"' }).rejects(refused('PreconditionFailed', 412));

    expect(await lease.acquire(mine)).toEqual({ acquired: false });
  });

  it('replaces an object that is not a lease', async () => {
    mock.on(PutObjectCommand, { IfNoneMatch: '*' }).rejects(refused('PreconditionFailed', 412));
    mock.on(GetObjectCommand, { Key: LEASE_KEY }).resolves(stored('not a lease', '"e0"'));
    mock.on(PutObjectCommand, { IfMatch: '"e0"' }).resolves({ ETag: '"e2"' });

    expect(await lease.acquire(mine)).toMatchObject({ acquired: true });
  });

  it('tries again when the lease was given back between the refused write and the read', async () => {
    mock
      .on(PutObjectCommand, { IfNoneMatch: '*' })
      .rejectsOnce(refused('PreconditionFailed', 412))
      .resolves({ ETag: '"e3"' });
    mock
      .on(GetObjectCommand)
      .rejects(new NoSuchKey({ message: 'The specified key does not exist.', $metadata: {} }));

    expect(await lease.acquire(mine)).toMatchObject({ acquired: true });
    expect(mock).toHaveReceivedCommandTimes(PutObjectCommand, 2);
  });

  it('says which permission is missing when S3 denies the write', async () => {
    mock.on(PutObjectCommand).rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));

    await expect(lease.acquire(mine)).rejects.toThrow(
      `writing the run lease s3://${BUCKET}/${LEASE_KEY} failed (AccessDenied: Access Denied): the function role needs s3:PutObject on it`,
    );
  });

  it('gives back nothing when another run has replaced it since it expired', async () => {
    mock.on(PutObjectCommand).resolves({ ETag: '"e1"' });
    mock.on(DeleteObjectCommand).rejects(refused('PreconditionFailed', 412));

    const outcome = await lease.acquire(mine);
    if (!outcome.acquired) throw new Error('the lease was not taken');

    await expect(outcome.release()).resolves.toBeUndefined();
  });
});
