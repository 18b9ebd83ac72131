import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../mock-callback-server/main';

function call(url: string, ca: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca, headers }, (res) => {
      let raw = '';
      res.on('data', (c) => (raw += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: raw ? JSON.parse(raw) : null }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('mock-callback-server script', () => {
  it('starts on its own with a self-signed certificate and speaks the group-manager protocol', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-mock-'));
    const certOut = path.join(dir, 'mock.pem');
    const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const mock = await main(['node', 'main', '--port', '0', '--cert-out', certOut, '--client-id', 'cid', '--client-secret', 'sec', '--allow', 'a,b']);
    write.mockRestore();
    try {
      const ca = fs.readFileSync(certOut, 'utf8');
      expect((await call(`${mock.callbackURL}`, ca)).body).toEqual(['a', 'b']);

      const basic = `Basic ${Buffer.from('cid:sec').toString('base64')}`;
      const bad = await call(`${mock.oauthURL}?grant_type=client_credentials&client_id=cid&client_secret=nope`, ca, 'POST', { Authorization: basic });
      expect(bad.status).toBe(401);
      const noBasic = await call(`${mock.oauthURL}?grant_type=client_credentials&client_id=cid&client_secret=sec`, ca, 'POST');
      expect(noBasic.status).toBe(401);
      const ok = await call(`${mock.oauthURL}?grant_type=client_credentials&client_id=cid&client_secret=sec`, ca, 'POST', { Authorization: basic });
      expect(ok.status).toBe(200);
      const bearer = { Authorization: `Bearer ${ok.body.access_token}` };

      expect((await call(`${mock.callbackURL}/a`, ca)).status).toBe(401);
      expect(await call(`${mock.callbackURL}/a`, ca, 'GET', bearer)).toEqual({ status: 200, body: { entityId: 'a' } });
      expect((await call(`${mock.callbackURL}/c`, ca, 'GET', bearer)).status).toBe(403);
      expect((await call(`${mock.callbackURL}/c`, ca, 'POST')).status).toBe(204);
      expect((await call(`${mock.callbackURL}/c`, ca, 'GET', bearer)).status).toBe(200);
      expect((await call(`${mock.callbackURL}/a`, ca, 'DELETE')).status).toBe(204);
      expect((await call(`${mock.callbackURL}/a`, ca, 'GET', bearer)).status).toBe(403);
      expect((await call(`${mock.callbackURL}`, ca)).body).toEqual(['b', 'c']);
    } finally {
      await mock.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
