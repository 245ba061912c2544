import assert from 'node:assert/strict';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { rm } from 'node:fs/promises';
import { get as httpsGet, type RequestOptions } from 'node:https';
import { makePki, type TestPki } from '../support/certs';
import { makeTempDir } from '../support/paths';
import { d, RlsTestClient } from '../support/rls-client';
import { Code } from '../support/status';
import { httpCall, startTestServer, type TestServer } from '../support/test-server';
import { loadSettings } from '../../src/settings/settings';

const RULES = { 'tls.yaml': 'domain: tls\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 5}\n' };

/** GET over HTTPS; resolves with the status, rejects with the TLS error. */
function httpsStatus(port: number, path: string, options: RequestOptions): Promise<number> {
  return new Promise((resolveStatus, reject) => {
    const request = httpsGet({ host: '127.0.0.1', port, path, ...options }, (response) => {
      response.resume();
      resolveStatus(response.statusCode ?? 0);
    });
    request.on('error', reject);
  });
}

async function grpcError(client: RlsTestClient): Promise<ServiceError> {
  try {
    await client.call('tls', [d(['user', 'x'])], 0, 2000);
  } catch (error) {
    return error as ServiceError;
  } finally {
    client.close();
  }
  throw new Error('the call should have been refused');
}

describe('TLS and mTLS on the gRPC and HTTP servers', function () {
  this.timeout(30_000);
  let dir = '';
  let pki: TestPki;
  let rogue: TestPki;
  before(async () => {
    dir = await makeTempDir();
    pki = makePki(dir);
    rogue = makePki(dir, 'rogue-');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  describe('TLS (TLS_CERT_FILE, TLS_KEY_FILE)', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(RULES, { TLS_CERT_FILE: pki.serverCert, TLS_KEY_FILE: pki.serverKey });
    });
    after(() => server.stop());

    it('answers a client that trusts its CA, over gRPC and HTTPS', async () => {
      const client = new RlsTestClient(server.port, credentials.createSsl(pki.pem(pki.caCert)));
      try {
        assert.equal((await client.call('tls', [d(['user', 'a'])])).overall_code, Code.OK);
      } finally {
        client.close();
      }
      assert.equal(await httpsStatus(server.httpPort, '/healthz', { ca: pki.pem(pki.caCert) }), 200);
    });

    it('refuses a plaintext client and a client that does not trust the certificate', async () => {
      const plaintext = await grpcError(new RlsTestClient(server.port));
      assert.equal(plaintext.code, status.UNAVAILABLE);
      const untrusting = await grpcError(new RlsTestClient(server.port, credentials.createSsl(rogue.pem(rogue.caCert))));
      assert.equal(untrusting.code, status.UNAVAILABLE);
      assert.match(untrusting.details, /certificate|SSL|handshake|self.signed/i);
      await assert.rejects(httpCall(server.httpPort, 'GET', '/healthz'), 'plain HTTP to an HTTPS port fails');
      await assert.rejects(httpsStatus(server.httpPort, '/healthz', { ca: rogue.pem(rogue.caCert) }), /certificate|self.signed/i);
    });
  });

  describe('mTLS (TLS_CLIENT_CA_FILE; envoyproxy/ratelimit names accepted)', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(RULES, { GRPC_SERVER_TLS_CERT: pki.serverCert, GRPC_SERVER_TLS_KEY: pki.serverKey, GRPC_CLIENT_TLS_CACERT: pki.caCert });
    });
    after(() => server.stop());

    it('answers a client with a certificate from the client CA, over gRPC and HTTPS', async () => {
      const client = new RlsTestClient(server.port, credentials.createSsl(pki.pem(pki.caCert), pki.pem(pki.clientKey), pki.pem(pki.clientCert)));
      try {
        assert.equal((await client.call('tls', [d(['user', 'b'])])).overall_code, Code.OK);
      } finally {
        client.close();
      }
      const mutual = { ca: pki.pem(pki.caCert), key: pki.pem(pki.clientKey), cert: pki.pem(pki.clientCert) };
      assert.equal(await httpsStatus(server.httpPort, '/healthz', mutual), 200);
    });

    it('refuses a client without a certificate, and one whose certificate another CA signed', async () => {
      const without = await grpcError(new RlsTestClient(server.port, credentials.createSsl(pki.pem(pki.caCert))));
      assert.equal(without.code, status.UNAVAILABLE);
      const foreign = await grpcError(new RlsTestClient(server.port, credentials.createSsl(pki.pem(pki.caCert), rogue.pem(rogue.clientKey), rogue.pem(rogue.clientCert))));
      assert.equal(foreign.code, status.UNAVAILABLE);
      await assert.rejects(httpsStatus(server.httpPort, '/healthz', { ca: pki.pem(pki.caCert) }));
      await assert.rejects(httpsStatus(server.httpPort, '/healthz', { ca: pki.pem(pki.caCert), key: rogue.pem(rogue.clientKey), cert: rogue.pem(rogue.clientCert) }));
    });
  });

  it('refuses half a TLS setting, and an unreadable file, naming the setting', async () => {
    assert.throws(() => loadSettings({ TLS_CERT_FILE: pki.serverCert }), /TLS_KEY_FILE/);
    assert.throws(() => loadSettings({ TLS_CLIENT_CA_FILE: pki.caCert }), /TLS_CLIENT_CA_FILE/);
    await assert.rejects(startTestServer(RULES, { TLS_CERT_FILE: '/nonexistent/cert.pem', TLS_KEY_FILE: pki.serverKey }), /TLS_CERT_FILE.*\/nonexistent\/cert\.pem/);
  });
});
