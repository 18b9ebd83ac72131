import { createHmac, pbkdf2Sync, randomBytes, X509Certificate } from 'node:crypto';
import { PskJwt, deriveKey, sha256Fingerprint } from '../../src/pki/psk';

/** The recipe of design §6, written here independently of src/pki/psk.ts. */
function independentJwt(psk: string, payload: object, header: Record<string, unknown> = {}, salt = randomBytes(16)): string {
  const b64url = (b: Buffer) => b.toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  const h = b64url(Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'HS256', salt: salt.toString('base64'), ...header })));
  const p = b64url(Buffer.from(JSON.stringify(payload)));
  const key = pbkdf2Sync(psk, salt, 100_000, 32, 'sha256');
  return `${h}.${p}.${b64url(createHmac('sha256', key).update(`${h}.${p}`).digest())}`;
}

const RESOTO_VECTOR =
  'eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiIsInNhbHQiOiJuSVEzU3M5TGVNS1JHYUNQUEJxMnlBPT0ifQ.eyJleHAiOjE2NDkzNzI1MTR9.KXAmijfSsV-taO3890qJNzXKXng1u38eU6PTrDYTgVs';

describe('PSK JWT', () => {
  const jwt = new PskJwt('changeme');
  const future = () => Math.floor(Date.now() / 1000) + 600;

  it('the Resoto documentation vector has a valid signature for PSK changeme', async () => {
    await expect(jwt.verify(RESOTO_VECTOR, 'request', { checkExpiry: false })).resolves.toEqual({ exp: 1649372514 });
  });

  it('the Resoto vector is rejected as expired when expiry is checked', async () => {
    await expect(jwt.verify(RESOTO_VECTOR, 'request')).rejects.toThrow('invalid PSK token: expired');
  });

  it('the Resoto vector is rejected with another PSK', async () => {
    await expect(new PskJwt('changeme2').verify(RESOTO_VECTOR, 'request', { checkExpiry: false })).rejects.toThrow('bad signature');
  });

  it('accepts tokens built by an independent implementation of the recipe', async () => {
    const token = independentJwt('changeme', { exp: future(), sha256_fingerprint: 'AB:CD' });
    await expect(jwt.verify(token, 'ca-fingerprint')).resolves.toMatchObject({ sha256_fingerprint: 'AB:CD' });
  });

  it('a token says what it is for: one that vouches for a CA never admits, one that admits never vouches', async () => {
    const fingerprint = await jwt.signFingerprint('AB:CD', 60);
    expect(JSON.parse(Buffer.from(fingerprint.split('.')[1], 'base64url').toString())).toMatchObject({ purpose: 'ca-fingerprint', sha256_fingerprint: 'AB:CD' });
    await expect(jwt.verify(fingerprint, 'ca-fingerprint')).resolves.toMatchObject({ sha256_fingerprint: 'AB:CD' });
    await expect(jwt.verify(fingerprint, 'request')).rejects.toThrow('invalid PSK token: it is a CA fingerprint (it vouches for the CA and admits no one), not a request token');
    // One from before the claim (an older rks, Resoto's core): its fingerprint alone says what it is.
    const older = independentJwt('changeme', { exp: future(), sha256_fingerprint: 'AB:CD' });
    await expect(jwt.verify(older, 'request')).rejects.toThrow('not a request token');
    // Whatever else a token claims to be for admits no one either.
    await expect(jwt.verify(independentJwt('changeme', { exp: future(), purpose: 'login' }), 'request')).rejects.toThrow('it is for another purpose, not a request token');
    await expect(jwt.verify(independentJwt('changeme', { exp: future(), purpose: ['request'] }), 'request')).rejects.toThrow('for another purpose');
    // Requests: rks's own, and resotolib's (it signs `{}`), admit; neither vouches for a CA.
    const request = await jwt.signRequest(60);
    await expect(jwt.verify(request, 'request')).resolves.toMatchObject({ purpose: 'request' });
    await expect(jwt.verify(independentJwt('changeme', { exp: future() }), 'request')).resolves.toEqual({ exp: expect.any(Number) });
    await expect(jwt.verify(request, 'ca-fingerprint')).rejects.toThrow('it is a request token, not a CA fingerprint');
  });

  it("rks's own signing never waits on strangers' derivations: the CA's fingerprint is signed with every slot taken", async () => {
    const fresh = new PskJwt('changeme');
    const exp = future();
    const flood = Array.from({ length: 16 }, (_, i) => fresh.verify(independentJwt('wrong', { exp }), 'request', { source: `203.0.${i}.9` }).catch(() => undefined));
    await expect(fresh.signFingerprint('AB:CD', 60)).resolves.toMatch(/^ey/);
    await Promise.all(flood);
  });

  it('a token for another purpose is refused before any key is derived for it', async () => {
    const fresh = new PskJwt('changeme');
    const derive = jest.spyOn(fresh as unknown as { key: () => Promise<Buffer> }, 'key');
    await expect(fresh.verify(independentJwt('changeme', { exp: future(), sha256_fingerprint: 'AB' }), 'request')).rejects.toThrow('not a request token');
    expect(derive).not.toHaveBeenCalled();
  });

  it('its own tokens follow the recipe: the independent derivation verifies them', async () => {
    const token = await jwt.signRequest(60);
    const [h, p, s] = token.split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url').toString());
    expect(header).toEqual({ typ: 'JWT', alg: 'HS256', salt: expect.stringMatching(/^[A-Za-z0-9+/]{22}==$/) });
    const key = pbkdf2Sync('changeme', Buffer.from(header.salt, 'base64'), 100_000, 32, 'sha256');
    expect(createHmac('sha256', key).update(`${h}.${p}`).digest('base64url')).toBe(s);
    expect(deriveKey('changeme', Buffer.from(header.salt, 'base64'))).toEqual(key);
  });

  it.each([
    ['a wrong PSK', () => independentJwt('wrong', { exp: future() }), 'bad signature'],
    ['an expired token', () => independentJwt('changeme', { exp: Math.floor(Date.now() / 1000) - 10 }), 'expired'],
    ['a token without expiry', () => independentJwt('changeme', {}), 'no expiry'],
    ['a missing salt', () => independentJwt('changeme', { exp: future() }, { salt: undefined }), 'no salt'],
    ['a salt that is not base64', () => independentJwt('changeme', { exp: future() }, { salt: 'not base64!' }), 'no salt'],
    ['a huge salt', () => independentJwt('changeme', { exp: future() }, {}, randomBytes(4096)), 'no salt'],
    ['alg none', () => {
      const t = independentJwt('changeme', { exp: future() }, { alg: 'none' });
      return `${t.split('.').slice(0, 2).join('.')}.`;
    }, 'alg must be HS256'],
    ['alg RS256', () => independentJwt('changeme', { exp: future() }, { alg: 'RS256' }), 'alg must be HS256'],
    ['garbage', () => 'garbage', 'not a JWT'],
    ['a tampered payload', () => {
      const [h, , s] = independentJwt('changeme', { exp: future(), jti: 'one' }).split('.');
      return `${h}.${Buffer.from(JSON.stringify({ exp: future(), jti: 'two' })).toString('base64url')}.${s}`;
    }, 'bad signature'],
    ['a token that claims to live for a year', () => independentJwt('changeme', { exp: Math.floor(Date.now() / 1000) + 365 * 86400 }), 'longer than a day'],
    ['a token of the PSK made for something else (claims beyond its times)', () => independentJwt('changeme', { exp: future(), role: 'admin' }), 'for another purpose'],
  ])('rejects %s', async (_what, make, reason) => {
    await expect(jwt.verify(make(), 'request')).rejects.toThrow(reason);
  });

  it('a flood of fresh tokens neither blocks the event loop nor runs unbounded (429 beyond 16 at once)', async () => {
    const tokens = Array.from({ length: 40 }, () => independentJwt('changeme', { exp: future() }));
    const fresh = new PskJwt('changeme');
    let worstLagMs = 0;
    let last = Date.now();
    const timer = setInterval(() => {
      worstLagMs = Math.max(worstLagMs, Date.now() - last - 5);
      last = Date.now();
    }, 5);
    const results = await Promise.allSettled(tokens.map((t) => fresh.verify(t, 'request')));
    clearInterval(timer);
    const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(results.length - refused.length).toBeGreaterThanOrEqual(16);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(r.reason).toMatchObject({ status: 429 });
    expect(worstLagMs).toBeLessThan(100);
  });

  it('fingerprints like openssl: upper-case hex pairs joined by colons', async () => {
    const { issue } = await import('../support/pki');
    const c = await issue({ name: 'fp' });
    const x = new X509Certificate(c.certPem);
    expect(sha256Fingerprint(x.raw)).toBe(x.fingerprint256);
    expect(sha256Fingerprint(x.raw)).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });
});

describe('PSK keys and strangers', () => {
  it("a stranger's fresh salts are never remembered: a client's key stays; expired and expiry-less tokens are refused first", async () => {
    const jwt = new PskJwt('changeme');
    const keys = (jwt as unknown as { keys: Map<string, Buffer> }).keys;
    const client = independentJwt('changeme', { exp: Math.floor(Date.now() / 1000) + 600 });
    await jwt.verify(client, 'request');
    expect(keys.size).toBe(1);
    for (let i = 0; i < 20; i++) {
      await expect(jwt.verify(independentJwt('wrong', { exp: Math.floor(Date.now() / 1000) + 600 }), 'request')).rejects.toThrow('bad signature');
    }
    expect(keys.size).toBe(1);
    await expect(jwt.verify(independentJwt('changeme', { exp: 1 }), 'request')).rejects.toThrow('expired');
    await expect(jwt.verify(independentJwt('changeme', {}), 'request')).rejects.toThrow('no expiry');
    expect(keys.size).toBe(1);
  });
});

describe('PSK derivations and strangers', () => {
  it('one source holds at most 2 of the derivation slots: a flood from one address leaves room for others', async () => {
    const jwt = new PskJwt('changeme');
    const exp = Math.floor(Date.now() / 1000) + 600;
    const flood = Array.from({ length: 20 }, () => jwt.verify(independentJwt('wrong', { exp }), 'request', { source: '203.0.113.9' }).then(() => 200, (e: { status?: number }) => e.status));
    const client = jwt.verify(independentJwt('changeme', { exp }), 'request', { source: '198.51.100.1' });
    await expect(client).resolves.toMatchObject({ exp });
    const statuses = await Promise.all(flood);
    expect(statuses.filter((s) => s === 429).length).toBe(18);
    expect(statuses.filter((s) => s === 401).length).toBe(2);
  });
});
