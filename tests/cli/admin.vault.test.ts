import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { ServedRks, env, serveRks, vaultRead } from '../support/harness';
import { chainFor, issue } from '../support/pki';
import { uniq } from '../support/rks';
import { runRks } from '../support/serve';
import { freePort } from '../support/vault';

/** The real `rks` binary against a real rks over HTTPS. */
describe('rks CLI', () => {
  let rks: ServedRks;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rks-cli-'));
  const caFile = path.join(dir, 'rks-ca.pem');
  let token: string;

  /** Runs the CLI; resolves with its exit code, stdout+stderr. */
  async function cli(args: string[], extra: Record<string, string> = {}) {
    const r = runRks(args, { RKS_URL: rks.url, RKS_CA_CERT: caFile, ...(token ? { RKS_TOKEN: token } : {}), ...extra });
    const code = await r.exited;
    return { code, out: r.output() };
  }

  beforeAll(async () => {
    rks = await serveRks();
    fs.writeFileSync(caFile, rks.ca);
  });
  afterAll(async () => {
    await rks.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('login prints the admin token and saves nothing unless asked', async () => {
    const r = await cli(['login', '--login', env.adminLogin], { RKS_ADMIN_PASSWORD: env.adminPassword });
    expect(r.code).toBe(0);
    token = r.out.trim();
    expect(token).toMatch(/^hvs\./);
    expect(fs.readdirSync(dir)).toEqual(['rks-ca.pem']);
    const saved = path.join(dir, 'token');
    const s = await cli(['login', '--login', env.adminLogin, '--save', saved], { RKS_ADMIN_PASSWORD: env.adminPassword });
    expect(s.code).toBe(0);
    expect(fs.statSync(saved).mode & 0o777).toBe(0o600);
  });

  it('login with a wrong password shows the server\'s reason and exits 1', async () => {
    const r = await cli(['login', '--login', env.adminLogin, '--password', 'wrong']);
    expect(r.code).toBe(1);
    expect(r.out.trim()).toBe('rks: 400: invalid login or password');
  });

  it('a password file that cannot be read is a usage error (exit 2) naming the flag', async () => {
    const r = await cli(['login', '--login', env.adminLogin, '--password-file', path.join(dir, 'no-such-file')]);
    expect(r.code).toBe(2);
    expect(r.out.trim()).toBe(`rks: --password-file: cannot read ${path.join(dir, 'no-such-file')} (ENOENT)`);
  });

  it('secret push, info, get, groups, update, delete', async () => {
    const name = `${uniq('cli')}.example.com`;
    const c = await chainFor([name]);
    fs.writeFileSync(path.join(dir, 'leaf.pem'), c.leaf.certPem);
    fs.writeFileSync(path.join(dir, 'chain.pem'), c.root.certPem + c.intermediate.certPem);
    fs.writeFileSync(path.join(dir, 'key.pem'), c.privateKey);
    const files = ['--cert', path.join(dir, 'leaf.pem'), '--chain', path.join(dir, 'chain.pem'), '--key', path.join(dir, 'key.pem')];

    expect(await cli(['secret', 'push', name, ...files, '--ttl', '120'])).toEqual({ code: 0, out: `${name} stored\n` });
    expect((await vaultRead(`rks/data/${name}`)).body.data.data.meta).toEqual({ ttl: 120 });
    // A second push says what to run instead; a token rks refuses says which and what to do.
    expect(await cli(['secret', 'push', name, ...files])).toEqual({ code: 1, out: `rks: 409: secret '${name}' already exists (to replace its certificate and key: rks secret update ${name})\n` });
    const stale = await cli(['secret', 'info', name], { RKS_TOKEN: 'hvs.expired-or-made-up' });
    expect(stale).toEqual({ code: 1, out: 'rks: 403: permission denied (the token of --token / RKS_TOKEN was refused: it expired or is no administrator token; rks login gives a new one)\n' });

    const info = await cli(['secret', 'info', name, '--json']);
    expect(info.code).toBe(0);
    const parsed = JSON.parse(info.out);
    expect(parsed).toMatchObject({
      name,
      subject: `CN=${name}`,
      sans: [`DNS:${name}`],
      issuer: 'CN=rks test intermediate',
      keyType: 'EC P-256',
      sha256Fingerprint: new X509Certificate(c.leaf.certPem).fingerprint256,
      chainLength: 3,
      ttl: 120,
      groups: [],
      managed: false,
      expired: false,
    });
    expect(info.out).not.toContain('PRIVATE KEY');
    const human = await cli(['secret', 'info', name]);
    expect(human.out).toContain(`subject      CN=${name}`);

    const got = await cli(['secret', 'get', name]);
    expect(got.out).toContain(c.privateKey.trim());
    expect(await cli(['secret', 'groups', name, '--json'])).toEqual({ code: 0, out: '[]\n' });

    const next = await chainFor([name]);
    fs.writeFileSync(path.join(dir, 'next.pem'), next.certificate);
    fs.writeFileSync(path.join(dir, 'next.key'), next.privateKey);
    expect((await cli(['secret', 'update', name, '--cert', path.join(dir, 'next.pem'), '--key', path.join(dir, 'next.key')])).code).toBe(0);
    expect((await vaultRead(`rks/data/${name}`)).body.data.data.private_key).toBe(next.privateKey);
    // Without --ttl the TTL in force stays.
    expect((await vaultRead(`rks/data/${name}`)).body.data.data.meta).toEqual({ ttl: 120 });

    const group = uniq('cli-del');
    expect((await cli(['group', 'create', group])).code).toBe(0);
    expect((await cli(['group', 'associate', group, name])).code).toBe(0);
    const held = await cli(['secret', 'delete', name]);
    expect(held.code).toBe(1);
    expect(held.out).toMatch(new RegExp(`is still associated with '${group}' \\(dissociate it first: rks group dissociate <group> ${name.replace(/\./g, '\\.')}\\)`));
    expect((await cli(['group', 'dissociate', group, name])).code).toBe(0);
    expect(await cli(['secret', 'delete', name])).toEqual({ code: 0, out: `${name} deleted\n` });
    const gone = await cli(['secret', 'info', name]);
    expect(gone).toEqual({ code: 1, out: `rks: 404: secret '${name}' not found\n` });
  });

  it('secret list and group list; a push of a certificate about to lapse warns; info marks it', async () => {
    const soon = `${uniq('soon')}.example.com`;
    const later = `${uniq('later')}.example.com`;
    const g = uniq('inv');
    const month = `${uniq('month')}.example.com`;
    for (const [name, days] of [[soon, 0.25], [later, 90], [month, 30]] as const) {
      const c = await chainFor([name], { notAfter: new Date(Date.now() + days * 86400_000) });
      fs.writeFileSync(path.join(dir, `${name}.pem`), c.certificate);
      fs.writeFileSync(path.join(dir, `${name}.key`), c.privateKey);
    }
    const pushed = await cli(['secret', 'push', soon, '--cert', path.join(dir, `${soon}.pem`), '--key', path.join(dir, `${soon}.key`)]);
    expect(pushed.code).toBe(0);
    expect(pushed.out).toMatch(new RegExp(`^warning: the certificate expires within a day, at .*\n${soon} stored\n$`));
    expect((await cli(['secret', 'push', later, '--cert', path.join(dir, `${later}.pem`), '--key', path.join(dir, `${later}.key`)])).out).toBe(`${later} stored\n`);
    expect((await cli(['group', 'create', g])).code).toBe(0);
    expect((await cli(['group', 'associate', g, soon])).code).toBe(0);

    const listed = await cli(['secret', 'list', '--expiring', '7d', '--json']);
    const week = JSON.parse(listed.out) as { name: string }[];
    expect(week.map((s) => s.name)).toContain(soon);
    expect(week.map((s) => s.name)).not.toContain(later);
    const ofGroup = await cli(['secret', 'list', '--group', g]);
    expect(ofGroup.out.split('\n')[0]).toMatch(/^NAME +NOT AFTER +EXPIRES +KEY +TTL +RENEWAL +GROUPS$/);
    expect(ofGroup.out).toMatch(new RegExp(`${soon} +\\S+ +in \\d+ h \\(EXPIRING\\) +EC P-256 +300 +- +${g}`));
    expect(ofGroup.out).not.toContain(later);
    expect((await cli(['secret', 'info', soon])).out).toMatch(/valid +\S+ to \S+ +in \d+ h \(EXPIRING\)/);
    // A fresh 30-day certificate is not "expiring": only the last third of a life is.
    expect((await cli(['secret', 'push', month, '--cert', path.join(dir, `${month}.pem`), '--key', path.join(dir, `${month}.key`)])).code).toBe(0);
    expect((await cli(['secret', 'info', month])).out).toMatch(/valid +\S+ to \S+ +in (29|30) days\n/);
    expect((await cli(['secret', 'list', '--expiring', 'soon'])).code).toBe(2);

    const groups = JSON.parse((await cli(['group', 'list', '--json'])).out) as unknown[];
    expect(groups).toContainEqual({ name: g, callback: false, secrets: 1, nodes: 0 });
    expect((await cli(['group', 'list'])).out).toMatch(new RegExp(`\\n${g} +no +1 +0\\b`));
  });

  it('bad TLS material is refused with the server\'s reason', async () => {
    const c = await chainFor(['one.example.com']);
    fs.writeFileSync(path.join(dir, 'one.pem'), c.certificate);
    fs.writeFileSync(path.join(dir, 'one.key'), c.privateKey);
    const r = await cli(['secret', 'push', 'two.example.com', '--cert', path.join(dir, 'one.pem'), '--key', path.join(dir, 'one.key')]);
    expect(r).toEqual({ code: 1, out: "rks: 400: certificate 'one.example.com' is not valid for 'two.example.com'\n" });
  });

  it('group create, get, update, config, secrets, associate, token get/rotate, revoke-node, delete; node register and renew', async () => {
    const g = uniq('cli');
    const name = `${uniq('gs')}.example.com`;
    const c = await chainFor([name]);
    fs.writeFileSync(path.join(dir, 'g.pem'), c.certificate);
    fs.writeFileSync(path.join(dir, 'g.key'), c.privateKey);
    await cli(['secret', 'push', name, '--cert', path.join(dir, 'g.pem'), '--key', path.join(dir, 'g.key')]);

    const created = await cli(['group', 'create', g]);
    expect(created.code).toBe(0);
    const groupToken = created.out.trim();
    expect((await cli(['group', 'token', 'get', g])).out.trim()).toBe(groupToken);
    expect((await cli(['group', 'get', g])).out).toContain('callbackURL        (none: nodes are not verified)');

    const upd = await cli(['group', 'update', g, '--callback-url', 'https://m.example.com/cb', '--oauth-url', 'https://m.example.com/t', '--oauth-client-id', 'id', '--oauth-client-secret', 'sec', '--json']);
    expect(JSON.parse(upd.out)).toEqual({ callbackURL: 'https://m.example.com/cb', oauthURL: 'https://m.example.com/t', oauthClientID: 'id', oauthClientSecret: 'sec' });
    const partial = await cli(['group', 'update', g, '--oauth-client-id', 'id2', '--json']);
    expect(JSON.parse(partial.out)).toMatchObject({ callbackURL: 'https://m.example.com/cb', oauthClientID: 'id2' });
    expect((await cli(['group', 'config', g])).out).toContain('oauthClientSecret  (set)');
    await cli(['group', 'update', g, '--callback-url', '', '--oauth-url', '', '--oauth-client-id', '', '--oauth-client-secret', '']);

    expect(await cli(['group', 'associate', g, name])).toEqual({ code: 0, out: `${name} associated with ${g}\n` });
    expect((await cli(['group', 'secrets', g])).out).toBe(`${name}\n`);
    expect((await cli(['secret', 'groups', name])).out).toBe(`${g}\n`);

    const reg = await cli(['node', 'register', '--node-id', 'n1', '--json'], { RKS_TOKEN: groupToken });
    const { nodeToken, ttl } = JSON.parse(reg.out);
    expect(ttl).toBe(600);
    expect(await cli(['node', 'renew'], { RKS_TOKEN: nodeToken })).toEqual({ code: 0, out: '600\n' });
    expect((await cli(['secret', 'get', name], { RKS_TOKEN: nodeToken })).code).toBe(0);

    expect((await cli(['group', 'revoke-node', g, 'n1'])).code).toBe(0);
    expect((await cli(['node', 'renew'], { RKS_TOKEN: nodeToken })).out).toBe('rks: 403: permission denied (the token of --token / RKS_TOKEN was refused: it expired, was revoked, or is no group or node token)\n');

    const rotated = await cli(['group', 'token', 'rotate', g]);
    expect(rotated.out.trim()).not.toBe(groupToken);
    expect((await cli(['node', 'renew'], { RKS_TOKEN: groupToken })).code).toBe(1);

    expect((await cli(['group', 'dissociate', g, name])).code).toBe(0);
    expect(await cli(['group', 'delete', g])).toEqual({ code: 0, out: `group ${g} deleted\n` });
    expect((await cli(['group', 'get', g])).code).toBe(1);
  });

  it('exit codes: 2 for usage errors, 3 when rks cannot be reached or verified', async () => {
    expect((await cli(['group', 'create'])).code).toBe(2);
    expect((await cli(['secret', 'push', 'a.example.com'])).code).toBe(2);
    expect((await cli(['group', 'get', 'x'], { RKS_TOKEN: '' })).code).toBe(2);
    const down = await cli(['group', 'get', 'x'], { RKS_URL: `https://127.0.0.1:${await freePort()}` });
    expect(down.code).toBe(3);
    expect(down.out).toMatch(/cannot reach rks/);
    const untrusted = await cli(['group', 'get', 'x'], { RKS_CA_CERT: '' });
    expect(untrusted.code).toBe(3);
    expect(untrusted.out).toMatch(/cannot verify rks's TLS certificate/);
    const noScheme = await cli(['group', 'get', 'x'], { RKS_URL: rks.url.replace('https://', '') });
    expect(noScheme).toEqual({ code: 2, out: `rks: --url / RKS_URL: '${rks.url.replace('https://', '')}' is not an address like https://rks.example.com:8080\n` });
    const plain = await cli(['group', 'get', 'x'], { RKS_URL: rks.url.replace('https://', 'http://') });
    expect(plain.code).toBe(3);
    expect(plain.out).toMatch(/\(rks serves HTTPS: use https:\/\/\)/);
    const help = await cli(['group', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('revoke-node');
  });

  it('an unknown option is named before a missing required one; --json answers errors as JSON on stdout', async () => {
    const bogus = await cli(['secret', 'push', 'a.example.com', '--bogus', 'x']);
    expect(bogus).toEqual({ code: 2, out: "error: unknown option '--bogus'\n" });
    const missing = await cli(['secret', 'push', 'a.example.com', '--key', 'k']);
    expect(missing).toEqual({ code: 2, out: "error: required option '--cert <file>' not specified\n" });
    const notFound = runRks(['secret', 'info', `${uniq('none')}.example.com`, '--json'], { RKS_URL: rks.url, RKS_CA_CERT: caFile, RKS_TOKEN: token });
    expect(await notFound.exited).toBe(1);
    expect(JSON.parse(notFound.stdout())).toEqual({ errors: [expect.stringMatching(/^secret '.*' not found$/)], code: 'not_found', status: 404 });
    const usage = runRks(['secret', 'push', 'a.example.com', '--json'], { RKS_URL: rks.url });
    expect(await usage.exited).toBe(2);
    expect(JSON.parse(usage.stdout())).toEqual({ errors: ["required option '--cert <file>' not specified"] });
  });

  it('rks status shows readiness, Vault, the CA and the version; node list shows a group\'s nodes', async () => {
    const st = await cli(['status', '--json']);
    expect(st.code).toBe(0);
    const status = JSON.parse(st.out);
    expect(status).toMatchObject({ live: true, ready: true, reasons: [], version: expect.any(String), vault: { active: env.vaultAddr } });
    expect(status.caFingerprint).toBe(new X509Certificate(rks.ca).fingerprint256);
    expect((await cli(['status'])).out).toMatch(/^ready +yes$/m);
    // Without a token: ready or not, not where Vault is.
    const anonymous = JSON.parse((await cli(['status', '--json'], { RKS_TOKEN: '' })).out);
    expect(anonymous).toMatchObject({ live: true, ready: true, reasons: [] });
    expect(anonymous.vault).toBeUndefined();
    expect((await cli(['status'], { RKS_TOKEN: '' })).out).toMatch(/^vault +nodes shown with an admin token/m);

    const g = uniq('nl');
    const tokenFile = path.join(dir, `${g}.token`);
    const created = await cli(['group', 'create', g, '--save', tokenFile]);
    expect(created).toEqual({ code: 0, out: `group token saved to ${tokenFile} (mode 0600)\n` });
    expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);
    const groupToken = fs.readFileSync(tokenFile, 'utf8').trim();
    expect(groupToken).toMatch(/^hvs\./);
    for (const n of ['n2', 'n1']) expect((await cli(['node', 'register', '--node-id', n], { RKS_TOKEN: groupToken })).code).toBe(0);
    const list = JSON.parse((await cli(['node', 'list', g, '--json'])).out);
    expect(list.map((n: { nodeId: string }) => n.nodeId)).toEqual(['n1', 'n2']);
    expect(Date.parse(list[0].seenAt)).toBeGreaterThan(Date.now() - 60_000);
    expect((await cli(['node', 'list', g])).out).toMatch(/^NODE +REGISTERED +LAST SEEN\nn1 /);
    expect((await cli(['node', 'list', uniq('nosuch')])).code).toBe(1);
  });

  it('rks edge serves HTTPS for the group\'s names with keys it pulls, none on disk', async () => {
    const g = uniq('edge');
    const name = `${uniq('ed')}.example.com`;
    const ca = await issue({ name: 'edge CA', ca: true });
    const leaf = await issue({ name, dns: [name], issuer: ca });
    fs.writeFileSync(path.join(dir, 'e.pem'), leaf.certPem);
    fs.writeFileSync(path.join(dir, 'e.key'), leaf.keyPem);
    await cli(['secret', 'push', name, '--cert', path.join(dir, 'e.pem'), '--key', path.join(dir, 'e.key')]);
    const groupToken = (await cli(['group', 'create', g])).out.trim();
    await cli(['group', 'associate', g, name]);
    fs.rmSync(path.join(dir, 'e.key'));

    const port = await freePort();
    const edge = runRks(['edge', '--listen', `127.0.0.1:${port}`, '--node-id', 'edge-9'], {
      RKS_URL: rks.url,
      RKS_CA_CERT: caFile,
      RKS_GROUP_TOKEN: groupToken,
    });
    try {
      await edge.waitFor('edge listening');
      const body = await new Promise<string>((resolve, reject) => {
        const s = tls.connect({ port, host: '127.0.0.1', servername: name, ca: ca.certPem }, () => {
          s.write(`GET / HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`);
        });
        let data = '';
        s.on('data', (d) => (data += d));
        s.on('end', () => resolve(data));
        s.on('error', reject);
      });
      expect(body).toContain(`${name} served by rks edge node edge-9`);
      // Logged as the key arrives; the line may reach the pipe a moment after the answer.
      await edge.waitFor('key fetched', 5000);
      expect(edge.output()).not.toContain('PRIVATE KEY');
      // Names it may not serve: refused, and said (the first at once, then once a minute with a count).
      for (const stranger of ['nope.example.org', 'x.nope.example.org', 'again.example.org']) {
        await new Promise<void>((resolve) => {
          const s = tls.connect({ port, host: '127.0.0.1', servername: stranger, ca: ca.certPem });
          s.on('error', () => resolve());
          s.on('secureConnect', () => (s.destroy(), resolve()));
        });
      }
      await edge.waitFor('handshakes refused', 5000);
      const said = edge.output().split('\n').filter((l) => l.includes('handshakes refused')).map((l) => JSON.parse(l));
      expect(said).toEqual([expect.objectContaining({ level: 'warn', handshakes: 1, examples: ['nope.example.org'] })]);
    } finally {
      await edge.stop();
    }
  });

  it('rks edge that rks refuses (a wrong group token) says which token and exits 1 instead of retrying for ever; a bad node id is named before rks is asked', async () => {
    const edge = runRks(['edge', '--listen', '127.0.0.1:0', '--node-id', 'edge-r'], { RKS_URL: rks.url, RKS_CA_CERT: caFile, RKS_GROUP_TOKEN: 'hvs.not-a-group-token' });
    expect(await edge.exited).toBe(1);
    expect(edge.output()).toMatch(/rks: this edge cannot register: rks answered 403: .*\(the group token of --group-token \/ RKS_GROUP_TOKEN was refused\)\n/);
    const token = (await cli(['group', 'create', uniq('bad')])).out.trim();
    const bad = runRks(['edge', '--listen', '127.0.0.1:0', '--node-id', 'bad_id'], { RKS_URL: 'https://192.0.2.1:1', RKS_CA_CERT: caFile, RKS_GROUP_TOKEN: token });
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toMatch(/--node-id.*'bad_id' is no node id: use 1 to 64 letters, digits or '-'/);
  }, 30_000);

  it('rks edge whose port is taken says so and exits 1 before it registers', async () => {
    const g = uniq('busy');
    const groupToken = (await cli(['group', 'create', g])).out.trim();
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const edge = runRks(['edge', '--listen', `127.0.0.1:${port}`, '--node-id', 'edge-b'], { RKS_URL: rks.url, RKS_CA_CERT: caFile, RKS_GROUP_TOKEN: groupToken });
      expect(await edge.exited).toBe(1);
      expect(edge.output()).toContain(`--listen 127.0.0.1:${port}: the address is already in use`);
      expect(edge.output()).not.toMatch(/at .*\.js:\d+/);
      expect(JSON.parse((await cli(['node', 'list', g, '--json'])).out)).toEqual([]);
    } finally {
      blocker.close();
    }
  });
});
