import { Registry } from 'prom-client';
import { createLogger } from '../../src/log';
import { createMetrics } from '../../src/metrics';
import { ExpiryIndex } from '../../src/secrets/expiry-index';
import { ExpiryWatch } from '../../src/secrets/expiry-watch';
import { MemoryKv, MemoryTokens, memorySession } from '../support/memory-vault';

const DAY = 86400;

describe('ExpiryWatch (in memory)', () => {
  it('counts what expires within 7 and 30 days, exposes the soonest ones, and warns once per secret entering its last days', async () => {
    const kv = new MemoryKv();
    const tokens = new MemoryTokens();
    const index = new ExpiryIndex(kv);
    const admin = tokens.issue(['rks_admin']);
    const t = Math.floor(Date.now() / 1000);
    const now = t * 1000;
    await index.set(admin, 'gone.example.com', new Date((t - 60) * 1000).toISOString());
    await index.set(admin, 'day.example.com', new Date((t + DAY) * 1000).toISOString());
    await index.set(admin, 'ten.example.com', new Date((t + 10 * DAY) * 1000).toISOString());
    await index.set(admin, 'sixty.example.com', new Date((t + 60 * DAY) * 1000).toISOString());
    const metrics = createMetrics(new Registry(), false);
    const lines: any[] = [];
    const watch = new ExpiryWatch(
      index,
      memorySession(tokens),
      { expiry: metrics.secretExpiry, expiring: metrics.secretsExpiring, lastPass: metrics.expiryPass },
      createLogger('warn', { write: (l: string) => void lines.push(JSON.parse(l)) }),
      { warnDays: 14, seriesLimit: 3 },
    );
    await watch.pass(now);
    const text = await metrics.registry.metrics();
    expect(text).toContain('rks_secrets_expiring{within="expired"} 1');
    expect(text).toContain('rks_secrets_expiring{within="7d"} 2');
    expect(text).toContain('rks_secrets_expiring{within="30d"} 3');
    expect(text).toContain(`rks_secret_expiry_timestamp_seconds{fqdn="gone.example.com"} ${t - 60}`);
    expect(text).toContain(`rks_secret_expiry_timestamp_seconds{fqdn="ten.example.com"} ${t + 10 * DAY}`);
    expect(text).not.toContain('sixty.example.com');
    expect(lines.map((l) => [l.fqdn, l.msg])).toEqual([
      ['gone.example.com', 'certificate has expired: nodes get 410 for it until a new one is pushed'],
      ['day.example.com', 'certificate expires soon'],
      ['ten.example.com', 'certificate expires soon'],
    ]);
    // Nothing new: no new lines. A renewed certificate that again expires soon: one line.
    await watch.pass(now);
    expect(lines).toHaveLength(3);
    await index.set(admin, 'day.example.com', new Date((t + 2 * DAY) * 1000).toISOString());
    await watch.pass(now);
    expect(lines.slice(3).map((l) => [l.fqdn, l.daysLeft])).toEqual([['day.example.com', 2]]);
  });
});
