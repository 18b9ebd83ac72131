import { Registry } from 'prom-client';
import { createLogger } from '../../src/log';
import { createMetrics } from '../../src/metrics';
import { ExpiryWatch } from '../../src/managed/expiry-watch';
import { Listings } from '../../src/secrets/listing';
import { MemoryTokens, memorySession } from '../support/memory-vault';

const DAY = 86400;

describe('ExpiryWatch (in memory)', () => {
  it('counts what expires within 7 and 30 days, exposes the soonest ones, and warns once per secret entering its last days', async () => {
    const tokens = new MemoryTokens();
    const t = Math.floor(Date.now() / 1000);
    const now = t * 1000;
    const expiries = new Map([
      ['gone.example.com', t - 60],
      ['day.example.com', t + DAY],
      ['ten.example.com', t + 10 * DAY],
      ['sixty.example.com', t + 60 * DAY],
    ]);
    // Managed secrets rks renews: one on time, one failing, one late (due an hour and more ago), one waiting for its first certificate.
    const managed = new Map<string, { at: number; renewal?: { renewAt: number; failures: number } }>([
      ['on-time.example.com', { at: t + 12 * DAY, renewal: { renewAt: t + 3600, failures: 0 } }],
      ['failing.example.com', { at: t + 12 * DAY, renewal: { renewAt: t + 60, failures: 3 } }],
      ['late.example.com', { at: t + 12 * DAY, renewal: { renewAt: t - 2 * 3600, failures: 0 } }],
      ['due.example.com', { at: t + 12 * DAY, renewal: { renewAt: t - 60, failures: 0 } }],
      ['waiting.example.com', { at: 0, renewal: { renewAt: t, failures: 0 } }],
    ]);
    const entry = (at: number) => ({ info: { notAfter: new Date(at * 1000).toISOString() } });
    const spec = { issuer: 'rks-ca', sans: [], keyType: 'ec-p256' };
    const entries = () =>
        new Map<string, any>([
          ...[...expiries].map(([n, at]) => [n, { ...entry(at), version: 1, groups: [], groupsVersion: 0 }] as const),
          ...[...managed].map(([n, m]) => [n, { ...(m.at ? entry(m.at) : {}), managed: spec, renewal: m.renewal, version: 1, groups: [], groupsVersion: 0 }] as const),
        ]);
    // A catalog whose serial moves at every look: each pass reads it again.
    let serial = 0;
    const catalog = { scan: async (_token: string, fn: (fqdn: string, e: any) => void) => void [...entries()].forEach(([n, e]) => fn(n, e)), serial: async () => ++serial };
    const metrics = createMetrics(new Registry(), false);
    const lines: any[] = [];
    const watch = new ExpiryWatch(
      new Listings(catalog),
      memorySession(tokens),
      { expiry: metrics.secretExpiry, expiring: metrics.secretsExpiring, lastPass: metrics.expiryPass, managed: metrics.managedSecrets, acmeNextSlot: metrics.acmeNextSlot, acmeQueueThrough: metrics.acmeQueueThrough },
      createLogger('warn', { write: (l: string) => void lines.push(JSON.parse(l)) }),
      { warnDays: 14, seriesLimit: 3 },
    );
    await watch.pass(now);
    const text = await metrics.registry.metrics();
    expect(text).toContain('rks_secrets_expiring{within="expired"} 1');
    expect(text).toContain('rks_secrets_expiring{within="7d"} 2');
    expect(text).toContain('rks_secrets_expiring{within="30d"} 7');
    for (const [state, n] of [['pending', 1], ['scheduled', 1], ['due', 2], ['failing', 1], ['queued', 0]]) expect(text).toContain(`rks_managed_secrets{issuer="rks-ca",state="${state}"} ${n}`);
    expect(text).toContain(`rks_secret_expiry_timestamp_seconds{fqdn="gone.example.com"} ${t - 60}`);
    expect(text).toContain(`rks_secret_expiry_timestamp_seconds{fqdn="ten.example.com"} ${t + 10 * DAY}`);
    expect(text).not.toContain('sixty.example.com');
    // Managed secrets whose renewal is on time are not warned about: rks renews them.
    expect(lines.map((l) => [l.fqdn, l.msg]).sort()).toEqual([
      ['day.example.com', 'certificate expires soon'],
      ['failing.example.com', 'certificate expires soon'],
      ['gone.example.com', 'certificate has expired: nodes get 410 for it until a new one is pushed'],
      ['late.example.com', 'certificate expires soon'],
      ['ten.example.com', 'certificate expires soon'],
    ]);
    // Nothing new: no new lines. A renewed certificate that again expires soon: one line.
    await watch.pass(now);
    expect(lines).toHaveLength(5);
    expiries.set('day.example.com', t + 2 * DAY);
    await watch.pass(now);
    expect(lines.slice(5).map((l) => [l.fqdn, l.daysLeft])).toEqual([['day.example.com', 2]]);

    // This instance's own changes reach the metrics within a second, without reading the catalog.
    const read = jest.spyOn(catalog, 'scan');
    watch.note('new.example.com', new Date((t + 3 * DAY) * 1000).toISOString());
    watch.note('gone.example.com', null);
    // One rks just made or renewed: on time, whatever its lifetime.
    watch.note('made.example.com', new Date((t + DAY) * 1000).toISOString(), true);
    await new Promise((r) => setTimeout(r, 1200));
    const after = await metrics.registry.metrics();
    expect(after).toContain('rks_secrets_expiring{within="expired"} 0');
    expect(after).toContain('rks_secrets_expiring{within="7d"} 3');
    expect(lines.slice(6).map((l) => l.fqdn)).toEqual(['new.example.com']);
    expect(read).not.toHaveBeenCalled();
    watch.stop();
  });
});
