import request from 'supertest';
import { vaultStores } from '../../src/vault/adapters';
import { InitService } from '../../src/init/service';
import { TestCluster, startCluster } from '../support/cluster';
import { Harness, adminToken, env, harness } from '../support/harness';
import { associate, createGroup, pushSecret, registerNode } from '../support/rks';
import { chainFor } from '../support/pki';
import { vaultClient } from '../support/vault';

interface Seen {
  at: number;
  ms: number;
  status: number;
  retryAfter?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` over and over until stopped, recording each answer's status, time and duration. */
function keepCalling(fn: () => request.Test, pauseMs = 20) {
  const seen: Seen[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const at = Date.now();
      const res = await fn();
      seen.push({ at, ms: Date.now() - at, status: res.status, retryAfter: res.headers['retry-after'] });
      await sleep(pauseMs);
    }
  })();
  return {
    seen,
    async stop() {
      running = false;
      await done;
    },
  };
}

/** Seconds between the first and the last answer that is not `ok`, after `from`. */
const errorWindow = (seen: Seen[], from: number, ok = 200) => {
  const bad = seen.filter((s) => s.at >= from && s.status !== ok);
  return bad.length ? (bad[bad.length - 1].at + bad[bad.length - 1].ms - from) / 1000 : 0;
};

/**
 * rks in front of a real 3-node Vault cluster with integrated storage: the active node killed,
 * frozen and sealed while a node reads a secret and an admin pushes secrets.
 */
describe('rks over a Vault HA cluster', () => {
  let cluster: TestCluster;
  let h: Harness;
  let admin: string;
  let nodeToken: string;
  const fqdn = 'ha.example.com';
  const DEADLINE_MS = 1000;

  beforeAll(async () => {
    cluster = await startCluster(3);
    const first = vaultClient(cluster.addrs[0]);
    await new InitService(vaultStores(first), { login: env.adminLogin, password: env.adminPassword }).init(cluster.rootToken);
    first.close();
    h = harness({ vaultAddrs: cluster.addrs, vaultTimeout: DEADLINE_MS / 1000 });
    admin = await adminToken(h.app);
    const groupToken = await createGroup(h.app, admin, 'edge');
    await pushSecret(h.app, admin, fqdn);
    await associate(h.app, admin, 'edge', fqdn);
    nodeToken = (await registerNode(h.app, groupToken, 'edge-1')).nodeToken;
  }, 120_000);
  afterAll(async () => {
    h?.close();
    await cluster?.stop();
  });

  const read = () => request(h.app).get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', nodeToken);
  const ready = () => request(h.app).get('/readyz');
  /** Waits until reads through rks have been 200 for `ms` in a row. */
  const servedAgain = async (seen: Seen[], since: number, ms = 1500, limit = 45_000) => {
    const deadline = Date.now() + limit;
    for (;;) {
      const after = seen.filter((s) => s.at > since);
      const lastBad = [...after].reverse().find((s) => s.status !== 200);
      const okFrom = lastBad ? lastBad.at + lastBad.ms : since;
      if (after.some((s) => s.at > okFrom) && Date.now() - okFrom > ms) return;
      if (Date.now() > deadline) throw new Error(`not served again: ${JSON.stringify(after.slice(-5))}`);
      await sleep(100);
    }
  };

  it('the active node killed: only 503s with Retry-After while the cluster elects a leader, then served with no restart; no acknowledged push lost', async () => {
    const victim = await cluster.settled();
    const reads = keepCalling(read);
    const readiness = keepCalling(ready, 100);
    const pushes: { name: string; status: number; cert: string }[] = [];
    let pushing = true;
    const pusher = (async () => {
      for (let i = 0; pushing; i++) {
        const name = `w${i}.ha.example.com`;
        const c = await chainFor([name]);
        const res = await request(h.app).post(`/rks/v1/secret/${name}`).set('X-Vault-Token', admin).send({ data: { certificate: c.certificate, private_key: c.privateKey } });
        pushes.push({ name, status: res.status, cert: c.certificate });
      }
    })();
    await sleep(500);
    const killedAt = Date.now();
    await victim.kill();
    await servedAgain(reads.seen, killedAt);
    pushing = false;
    await pusher;
    await reads.stop();
    await readiness.stop();

    const statuses = new Set(reads.seen.map((s) => s.status));
    expect([...statuses].every((s) => s === 200 || s === 503)).toBe(true);
    expect(reads.seen.filter((s) => s.status === 503).every((s) => s.retryAfter !== undefined)).toBe(true);
    const window = errorWindow(reads.seen, killedAt);
    console.log(`active killed: reads failed for ${window}s (${reads.seen.filter((s) => s.status !== 200).length} of ${reads.seen.length}); statuses ${[...statuses]}`);
    expect(window).toBeLessThan(15);
    // The dead node is still dead: rks moved on by itself.
    expect(await victim.health()).toBe(0);
    // /readyz: 503 within a second of the fault, 200 within a second of the cluster serving again.
    const firstUnready = readiness.seen.find((s) => s.at >= killedAt && s.status === 503);
    const recovered = reads.seen.find((s) => s.at > killedAt && s.status === 200 && reads.seen.some((b) => b.at > killedAt && b.at < s.at && b.status !== 200))!;
    const readyAgain = readiness.seen.find((s) => s.at >= (recovered?.at ?? killedAt) && s.status === 200);
    const notReadyAfter = firstUnready ? (firstUnready.at + firstUnready.ms - killedAt) / 1000 : undefined;
    const readyAfter = readyAgain && recovered ? (readyAgain.at + readyAgain.ms - recovered.at) / 1000 : undefined;
    console.log(`active killed: /readyz 503 ${notReadyAfter}s after the kill, 200 ${readyAfter}s after reads recovered`);
    expect(notReadyAfter).toBeLessThan(1.5);
    expect(readyAfter).toBeLessThan(1.5);
    expect(readiness.seen[readiness.seen.length - 1].status).toBe(200);

    // Every acknowledged push is there; any other is all there or not at all.
    expect(pushes.every((p) => p.status === 201 || p.status === 503)).toBe(true);
    expect(pushes.filter((p) => p.status === 201).length).toBeGreaterThan(0);
    for (const p of pushes) {
      const got = await request(h.app).get(`/rks/v1/secret/${p.name}`).set('X-Vault-Token', admin);
      if (p.status === 201) expect(got.body.data?.certificate).toBe(p.cert);
      else expect(got.status === 404 || got.body.data?.certificate === p.cert).toBe(true);
    }

    // The node comes back as a standby; rks keeps serving.
    await victim.restart();
    expect([200, 429]).toContain(await victim.health());
    expect((await read()).status).toBe(200);
  }, 120_000);

  it('the active node frozen: every client answered within the deadline, then served by the new leader', async () => {
    const victim = await cluster.settled();
    const reads = keepCalling(read);
    await sleep(300);
    const frozenAt = Date.now();
    victim.freeze();
    try {
      await servedAgain(reads.seen, frozenAt);
    } finally {
      victim.thaw();
    }
    await reads.stop();
    const slowest = Math.max(...reads.seen.map((s) => s.ms));
    const statuses = new Set(reads.seen.map((s) => s.status));
    console.log(`active frozen: reads failed for ${errorWindow(reads.seen, frozenAt)}s; slowest answer ${slowest} ms; statuses ${[...statuses]}`);
    expect([...statuses].every((s) => s === 200 || s === 503)).toBe(true);
    expect(slowest).toBeLessThan(DEADLINE_MS + 400);
    await sleep(2000);
    expect((await read()).status).toBe(200);
  }, 120_000);

  it('one address, frozen: 200 concurrent readers all answered within the deadline; past the in-flight bound at once', async () => {
    const victim = await cluster.settled();
    const single = harness({ vaultAddrs: [victim.addr], vaultTimeout: DEADLINE_MS / 1000, vaultMaxInFlight: 50 });
    try {
      const token = await adminToken(single.app);
      expect((await request(single.app).get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token)).status).toBe(200);
      victim.freeze();
      const answers = await Promise.all(
        Array.from({ length: 200 }, async () => {
          const at = Date.now();
          const res = await request(single.app).get(`/rks/v1/secret/${fqdn}`).set('X-Vault-Token', token);
          return { ms: Date.now() - at, status: res.status, retryAfter: res.headers['retry-after'], body: res.body };
        }),
      );
      victim.thaw();
      const slowest = Math.max(...answers.map((a) => a.ms));
      console.log(`one frozen address, 200 readers: slowest ${slowest} ms`);
      expect(answers.every((a) => a.status === 503 && a.retryAfter)).toBe(true);
      expect(slowest).toBeLessThan(DEADLINE_MS + 400);
      const busy = answers.filter((a) => a.body.errors[0] === 'too many requests are waiting on vault');
      expect(busy.length).toBeGreaterThanOrEqual(100);
      expect(Math.max(...busy.map((a) => a.ms))).toBeLessThan(DEADLINE_MS);
    } finally {
      victim.thaw();
      single.close();
    }
    await cluster.active();
    await sleep(1000);
  }, 120_000);

  it('the active node sealed, then unsealed: a short 503 with Retry-After, never 500, and /readyz follows', async () => {
    const victim = await cluster.settled();
    const reads = keepCalling(read);
    await sleep(300);
    const sealedAt = Date.now();
    await victim.seal();
    await servedAgain(reads.seen, sealedAt);
    await reads.stop();
    const statuses = new Set(reads.seen.map((s) => s.status));
    console.log(`active sealed: reads failed for ${errorWindow(reads.seen, sealedAt)}s; statuses ${[...statuses]}`);
    expect([...statuses].every((s) => s === 200 || s === 503)).toBe(true);
    expect(errorWindow(reads.seen, sealedAt)).toBeLessThan(15);

    const status = await request(h.app).get('/readyz').set('X-Vault-Token', cluster.rootToken);
    expect(status.status).toBe(200);
    expect(status.body.vault.nodes).toContainEqual({ addr: victim.addr, state: 'sealed' });
    await victim.unseal();
    expect((await read()).status).toBe(200);
  }, 120_000);
});
