// A throwaway PKI for HTTPS tests: a CA, and a certificate it signed for 127.0.0.1 and localhost (made with openssl).
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './temp.ts';

export interface TestPki {
  /** The CA's certificate (PEM), to trust. */
  ca: string;
  /** The server's certificate and key (PEM). */
  cert: string;
  key: string;
  /** A key that does not match `cert`. */
  otherKey: string;
}

export async function makeTestPki(name: string): Promise<TestPki> {
  const dir = await tempDir(`ci-${name}-pki-`);
  const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=cloud-ingest ${name} test CA`);
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext');
  run('genrsa', '-out', 'other.key', '2048');
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), otherKey: join(dir, 'other.key') };
}
