import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function openssl(dir: string, args: string[]): void {
  const made = spawnSync('openssl', args, { cwd: dir });
  if (made.status !== 0) throw new Error(`openssl ${args[0]} failed: ${String(made.stderr)}`);
}

/** A CA, and a certificate it signed for `name` (server: SAN 127.0.0.1/localhost; client: CN only). */
export interface TestPki {
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** PEM contents, for clients. */
  pem(file: string): Buffer;
}

/** Makes a throwaway PKI in `dir` with openssl: a CA, a server certificate and a client certificate it signed. */
export function makePki(dir: string, prefix = ''): TestPki {
  const path = (name: string): string => join(dir, `${prefix}${name}`);
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${prefix}test-ca`, '-keyout', path('ca.key'), '-out', path('ca.pem')]);
  const sign = (name: string, subject: string, extensions: string): void => {
    openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', subject, '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`)]);
    writeFileSync(path(`${name}.ext`), extensions);
    openssl(dir, ['x509', '-req', '-in', path(`${name}.csr`), '-CA', path('ca.pem'), '-CAkey', path('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', path(`${name}.ext`), '-out', path(`${name}.pem`)]);
  };
  sign('server', '/CN=localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  sign('client', '/CN=envoy', 'extendedKeyUsage=clientAuth\n');
  return {
    caCert: path('ca.pem'),
    serverCert: path('server.pem'),
    serverKey: path('server.key'),
    clientCert: path('client.pem'),
    clientKey: path('client.key'),
    pem: (file) => readFileSync(file),
  };
}
