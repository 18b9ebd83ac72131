import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ServedRks, serveRks } from '../support/harness';

/**
 * The trust bootstrap against Resoto / Fix Inventory's own client library, resotolib 3.9.0 (not a
 * re-implementation): it fetches the CA and checks its fingerprint with the PSK, then has a CSR
 * signed with a PSK JWT of its own. And what a stranger does with what rks hands anyone.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const PSK = 'resoto-psk-Zq81xLm';

function resotolibPython(): string {
  if (process.env.RKS_RESOTOLIB_PYTHON) return process.env.RKS_RESOTOLIB_PYTHON;
  return execFileSync(path.join(ROOT, 'scripts', 'resotolib-python.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

/** Runs `code` in resotolib's Python; its last stdout line is JSON. */
function python(code: string, env: Record<string, string>): Promise<{ ok: true; value: any } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    execFile(resotolibPython(), ['-c', code], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) return resolve({ ok: false, error: `${stderr}`.trim().split('\n').pop() ?? err.message });
      resolve({ ok: true, value: JSON.parse(stdout.trim().split('\n').pop()!) });
    });
  });
}

const FETCH_CA = `
import json, os
from resotolib.core.ca import get_ca_cert
from resotolib.x509 import cert_to_bytes, cert_fingerprint
ca = get_ca_cert(resotocore_uri=os.environ["URI"], psk=os.environ["PSK"])
print(json.dumps({"pem": cert_to_bytes(ca).decode(), "fingerprint": cert_fingerprint(ca)}))
`;

const SIGN = `
import json, os
from resotolib.core.ca import get_signed_cert
from resotolib.x509 import cert_to_bytes
key, cert = get_signed_cert("resoto-worker", ["worker.local"], ["127.0.0.1"], resotocore_uri=os.environ["URI"], psk=os.environ["PSK"], ca_cert_path=os.environ["CA"])
print(json.dumps({"pem": cert_to_bytes(cert).decode()}))
`;

describe('resotolib 3.9.0 against rks', () => {
  let rks: ServedRks;
  let dir: string;
  beforeAll(async () => {
    resotolibPython(); // installed (once) before the clock of any test runs
    rks = await serveRks({ psk: PSK });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-resoto-'));
  }, 300_000);
  afterAll(async () => {
    await rks.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('fetches the CA and checks its signed fingerprint with the PSK; a wrong PSK refuses it', async () => {
    const got = await python(FETCH_CA, { URI: rks.url, PSK });
    expect(got.ok).toBe(true);
    const ca = new X509Certificate((got as { value: { pem: string } }).value.pem);
    expect(ca.fingerprint256).toBe(new X509Certificate(rks.ca).fingerprint256);
    const wrong = await python(FETCH_CA, { URI: rks.url, PSK: 'another-psk-Uq3' });
    expect(wrong).toEqual({ ok: false, error: expect.stringMatching(/InvalidSignatureError|Signature verification failed/) });
  });

  it('has a CSR signed with its PSK JWT: a client certificate from rks\'s CA', async () => {
    fs.writeFileSync(path.join(dir, 'ca.pem'), rks.ca);
    const got = await python(SIGN, { URI: rks.url, PSK, CA: path.join(dir, 'ca.pem') });
    expect(got.ok).toBe(true);
    const cert = new X509Certificate((got as { value: { pem: string } }).value.pem);
    expect(cert.subject).toBe('CN=resoto-worker');
    expect(cert.verify(new X509Certificate(rks.ca).publicKey)).toBe(true);
    const wrong = await python(SIGN, { URI: rks.url, PSK: 'another-psk-Uq3', CA: path.join(dir, 'ca.pem') });
    expect(wrong).toEqual({ ok: false, error: expect.stringContaining('Failed to get signed certificate') });
  });

  it('a stranger cannot sign with the fingerprint JWT rks hands anyone: 401, no certificate', async () => {
    // As the review did it with curl -k, in resotolib's Python: the header taken, a CSR sent with it.
    const got = await python(`
import json, os, requests, warnings
from resotolib.x509 import gen_rsa_key, gen_csr, csr_to_bytes
warnings.simplefilter("ignore")
jwt = requests.get(os.environ["URI"] + "/ca/cert", verify=False).headers["Authorization"]
csr = csr_to_bytes(gen_csr(gen_rsa_key(), common_name="admin"))
r = requests.post(os.environ["URI"] + "/ca/sign", csr, headers={"Authorization": jwt}, verify=False)
print(json.dumps({"status": r.status_code, "body": r.json()}))
`, { URI: rks.url });
    expect(got).toEqual({
      ok: true,
      value: { status: 401, body: { errors: ['invalid PSK token: it is a CA fingerprint (it vouches for the CA and admits no one), not a request token'], code: 'unauthorized' } },
    });
  });
});
