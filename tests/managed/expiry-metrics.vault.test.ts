import request from 'supertest';
import { ServedRks, adminToken, serveRks } from '../support/harness';
import { chainFor } from '../support/pki';
import { uniq } from '../support/rks';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const expiring = (text: string) => Number(/rks_secrets_expiring\{within="7d"\} (\d+)/.exec(text)?.[1] ?? NaN);

/** The expiry metrics of a running rks follow its own pushes within seconds, not at the next 5-minute check. */
describe('expiry metrics after a push', () => {
  let rks: ServedRks;
  beforeAll(async () => {
    rks = await serveRks();
  });
  afterAll(() => rks.stop());

  it('a certificate expiring within 7 days counts in rks_secrets_expiring about a second after it is pushed', async () => {
    const metrics = async () => (await request(rks.app).get('/metrics')).text;
    // The check every rks runs a second after it starts, then every 5 minutes.
    for (let i = 0; i < 50 && !/rks_secret_expiry_check_timestamp_seconds [1-9]/.test(await metrics()); i++) await sleep(100);
    const before = expiring(await metrics());
    expect(Number.isFinite(before)).toBe(true);
    const name = `${uniq('exp')}.example.com`;
    const c = await chainFor([name], { notAfter: new Date(Date.now() + 3 * 86400_000) });
    const admin = await adminToken(rks.app);
    await request(rks.app).post(`/rks/v1/secret/${name}`).set('X-Vault-Token', admin).send({ data: { certificate: c.certificate, private_key: c.privateKey } }).expect(201);
    await sleep(2500);
    expect(expiring(await metrics())).toBeGreaterThanOrEqual(before + 1);
  });
});
