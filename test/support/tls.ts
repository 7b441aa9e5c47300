import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface TlsMaterial {
  readonly key: string;
  readonly cert: string;
}

/** A self-signed P-256 certificate and its key, made by openssl, valid for two days. */
export async function selfSignedCertificate(subject: string, altName?: string): Promise<TlsMaterial> {
  const dir = await mkdtemp(join(tmpdir(), 'registry-janitor-tls-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    await execFileAsync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-noenc',
        '-keyout',
        keyPath,
        '-out',
        certPath,
        '-days',
        '2',
        '-subj',
        `/CN=${subject}`,
        ...(altName ? ['-addext', `subjectAltName=${altName}`] : []),
      ],
      { timeout: 20_000 },
    );
    return { key: await readFile(keyPath, 'utf8'), cert: await readFile(certPath, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
