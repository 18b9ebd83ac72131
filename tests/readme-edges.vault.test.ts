import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { ServedRks, adminToken, serveRks } from './support/harness';
import { issue } from './support/pki';
import { readmeBlocks } from './support/readme';
import { createGroup, uniq } from './support/rks';
import { runRks } from './support/serve';
import { nginxMain, placeholder, runServer, serverBinary } from './support/servers';
import { freePort } from './support/vault';

/**
 * The README's nginx and HAProxy configurations and the `rks edge` commands beside them, as
 * written: checked by the servers themselves (`nginx -t`, `haproxy -c`), then run, with only
 * paths and ports put in for the test's own, until a name is served through them from rks.
 */
const README = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
const blocks = readmeBlocks(README);
const block = (lang: string, has: string) => {
  const found = blocks.find((b) => b.lang === lang && b.body.includes(has));
  if (!found) throw new Error(`no \`\`\`${lang} block with '${has}' in the README`);
  return found.body;
};
/** A README command as argv: continuation lines joined, no quoting in these. */
const argv = (text: string) => text.replace(/\\\n/g, ' ').trim().split(/\s+/).slice(1);

describe('the README\'s edge configurations, as written', () => {
  let rks: ServedRks;
  let admin: string;
  let origin: http.Server;
  let originPort: number;

  beforeAll(async () => {
    rks = await serveRks();
    admin = await adminToken(rks.app);
    origin = http.createServer((_req, res) => res.end('origin says hello\n'));
    originPort = await new Promise<number>((r) => origin.listen(0, '127.0.0.1', () => r((origin.address() as { port: number }).port)));
  });
  afterAll(async () => {
    origin.close();
    await rks.stop();
  });

  /** A group holding one name, its token and rks's CA written where the README's command reads them. */
  async function setUp(dir: string): Promise<{ name: string; ca: string; fingerprint: string; paths: Record<string, string> }> {
    const g = uniq('readme');
    const token = await createGroup(rks.app, admin, g);
    const name = `www.${g}.example.com`;
    const ca = await issue({ name: 'readme edge CA', ca: true });
    const leaf = await issue({ name, dns: [name], issuer: ca });
    await request(rks.app).post(`/rks/v1/secret/${name}`).set('X-Vault-Token', admin).send({ data: { certificate: leaf.certPem + ca.certPem, private_key: leaf.keyPem } }).expect(201);
    await request(rks.app).post(`/rks/v1/group/${g}/secrets/${name}`).set('X-Vault-Token', admin).expect(201);
    const paths = {
      '/etc/rks/group.token': path.join(dir, 'group.token'),
      '/etc/rks/ca.pem': path.join(dir, 'rks-ca.pem'),
      '/run/rks/edge.sock': path.join(dir, 'edge.sock'),
      'https://rks.internal:8080': rks.url,
      'edge-fra-1': `edge-${g}`,
    };
    fs.writeFileSync(paths['/etc/rks/group.token'], token, { mode: 0o600 });
    fs.writeFileSync(paths['/etc/rks/ca.pem'], rks.ca);
    return { name, ca: ca.certPem, fingerprint: new X509Certificate(leaf.certPem).fingerprint256, paths };
  }

  const put = (text: string, paths: Record<string, string>) => Object.entries(paths).reduce((t, [from, to]) => t.split(from).join(to), text);

  /** GET / over TLS for `name` until it is served: the certificate's fingerprint and the body. */
  async function served(port: number, name: string, ca: string): Promise<{ fingerprint: string; body: string }> {
    let last = '';
    for (let i = 0; i < 200; i++) {
      try {
        return await new Promise((resolve, reject) => {
          const req = https.get({ host: '127.0.0.1', port, servername: name, headers: { host: name }, ca, agent: false, path: '/' }, (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => resolve({ fingerprint: (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate()!.fingerprint256, body }));
          });
          req.on('error', reject);
        });
      } catch (err) {
        last = (err as Error).message;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error(`${name} never served on ${port}: ${last}`);
  }

  it('HAProxy: its configuration passes haproxy -c, and with the README\'s rks edge it serves a name from rks', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-readme-haproxy-'));
    const { name, ca, fingerprint, paths } = await setUp(dir);
    const ports = { https: await freePort(), http: await freePort() };
    Object.assign(paths, {
      '/run/haproxy/admin.sock': path.join(dir, 'admin.sock'),
      '/etc/haproxy/rks.crtlist': path.join(dir, 'rks.crtlist'),
      'bind :443 ': `bind 127.0.0.1:${ports.https} `,
      'bind :80\n': `bind 127.0.0.1:${ports.http}\n`,
      '127.0.0.1:8080': `127.0.0.1:${originPort}`,
    });
    fs.writeFileSync(paths['/etc/haproxy/rks.crtlist'], '');
    const cfg = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(cfg, `${put(block('haproxy', 'stats socket'), paths)}\n`);
    // As the README's block stands: valid, with no warning but the one it names (the bind has no
    // certificate until the agent loads them).
    const checked = spawnSync(serverBinary('haproxy'), ['-c', '-f', cfg], { encoding: 'utf8' });
    const said = `${checked.stdout}${checked.stderr}`.split('\n').filter((l) => /WARNING|ALERT/.test(l) && !/no SSL certificate specified for bind/.test(l));
    expect({ status: checked.status, said }).toEqual({ status: 0, said: [] });
    const haproxy = runServer(serverBinary('haproxy'), ['-f', cfg, '-db'], dir);
    const command = block('sh', 'rks edge --no-listen --haproxy-socket');
    let edge: ReturnType<typeof runRks> | undefined;
    try {
      while (!fs.existsSync(paths['/run/haproxy/admin.sock'])) await new Promise((r) => setTimeout(r, 50));
      edge = runRks(argv(put(command, paths)));
      const got = await served(ports.https, name, ca);
      expect(got).toEqual({ fingerprint, body: 'origin says hello\n' });
    } finally {
      await edge?.stop();
      await haproxy.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('nginx: its block inside a main configuration passes nginx -t, and with the README\'s rks edge it serves a name from rks', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-readme-nginx-'));
    const { name, ca, fingerprint, paths } = await setUp(dir);
    const ports = { https: await freePort(), http: await freePort() };
    const { cert, key } = await placeholder(dir);
    Object.assign(paths, {
      '/usr/share/rks/nginx/': `${path.join(__dirname, '..', 'edge', 'nginx')}/`,
      '/etc/nginx/placeholder.pem': cert,
      '/etc/nginx/placeholder.key': key,
      'listen 443 ssl;': `listen 127.0.0.1:${ports.https} ssl;`,
      'listen 80;': `listen 127.0.0.1:${ports.http};`,
      '127.0.0.1:8080': `127.0.0.1:${originPort}`,
    });
    // The main configuration the README says goes around it: the Lua module's lines, a user that
    // may open the agent's socket (here the test's own), and nginx's own paths in the test's folder.
    const conf = nginxMain(dir, `  include ${dir}/rks.conf;`);
    fs.writeFileSync(path.join(dir, 'rks.conf'), put(block('nginx', 'ssl_certificate_by_lua_block'), paths));
    fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
    const nginx = serverBinary('nginx');
    const args = ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')];
    execFileSync(nginx, [...args, '-t'], { stdio: 'pipe' });
    const command = block('sh', 'rks edge --no-listen --agent-socket');
    const edge = runRks(argv(put(command, paths)));
    const server = runServer(nginx, args, dir);
    try {
      const got = await served(ports.https, name, ca);
      expect(got).toEqual({ fingerprint, body: 'origin says hello\n' });
    } finally {
      await server.stop();
      await edge.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
