/**
 * Writes into a Vault exactly what Orange's remote-key-server (the "classic" RKS, v0.9) writes:
 * read from its pkg/vault/client.go, pkg/vault/policy.go and pkg/api (init, group creation,
 * association, node registration). Used to test taking such a deployment over.
 */

export const CLASSIC_ADMIN_POLICY = `
path "rks/*" {
  capabilities = ["create","update","read","list","delete"]
}

path "sys/policies/*" {
  capabilities = ["create","update","read","delete"]
}

path "sys/leases/revoke-prefix/auth/token/*" {
  capabilities = ["sudo","create","update","read","delete"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/roles/*" {
  capabilities = ["create","update","read","delete"]
}

path "auth/token/create/*" {
  capabilities = ["create","update","read"]
}

path "auth/token/revoke" {
  capabilities = ["create","update","read"]
}
path "auth/token/renew-self"{
  capabilities=["create","update","read"]
}`;

const groupTokenAccessPolicy = (g: string) => `
	path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "rks/data/groups/${g}/*" {
  capabilities = ["create","update","read"]
}

path "auth/token/roles/${g}-*" {
  capabilities = ["create","update","read"]
}

path "auth/token/create/${g}-*" {
  capabilities = ["create","update","read"]
}

path "auth/token/renew-self"{
  capabilities=["create","update","read"]
}`;

const GROUP_INIT_ACCESS_POLICY = `
	path "auth/token/renew-self" {
		capabilities =  ["read", "create", "update"]
	}
`;

const groupSecretAccessPolicy = (fqdns: string[]) => `# Group secret access policy
	path "auth/token/renew-self" {
		capabilities =  ["read", "create", "update"]
	}
${fqdns.map((f) => `
	path "rks/data/${f}" {
		capabilities = ["read"]
}
`).join('')}`;

export interface ClassicSeed {
  admin: { login: string; password: string };
  /** Secrets as the classic stores them: whatever strings it was given. */
  secrets: Record<string, { certificate: string; private_key: string; ttl?: number }>;
  groups: Record<string, { secrets: string[]; nodes: string[]; callbackURL?: string }>;
}

export interface ClassicDeployment {
  groupTokens: Record<string, string>;
  /** `<group>/<node>` → node token. */
  nodeTokens: Record<string, string>;
}

export async function seedClassic(addr: string, rootToken: string, seed: ClassicSeed): Promise<ClassicDeployment> {
  const call = async (method: string, path: string, body?: unknown, token = rootToken) => {
    const res = await fetch(`${addr}/v1/${path}`, {
      method,
      headers: { 'X-Vault-Token': token, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`classic seed: ${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  const kvWrite = (path: string, data: unknown) => call('POST', `rks/data/${path}`, { data });

  // InitRKS: the KV engine, userpass with the admin user, then the config record (with the
  // classic's own TLS key and admin password in it, as it writes them).
  await call('POST', 'sys/mounts/rks', { type: 'kv', options: { version: '2' } });
  await call('POST', 'sys/auth/userpass', { type: 'userpass' });
  await call('PUT', 'sys/policies/acl/admin', { policy: CLASSIC_ADMIN_POLICY });
  await call('POST', `auth/userpass/users/${seed.admin.login}`, { password: seed.admin.password, policies: ['admin'], token_policies: ['admin'] });
  await kvWrite('config', {
    VaultAddr: addr,
    Certificate: '/etc/rks/cert.pem',
    PrivateKey: '/etc/rks/key.pem',
    ListenAddress: '0.0.0.0:8080',
    VaultInitialized: true,
    AdminLogin: seed.admin.login,
    AdminPwd: seed.admin.password,
    LogLevel: 'info',
  });
  // The classic acts as its admin from then on.
  const admin = (await call('POST', `auth/userpass/login/${seed.admin.login}`, { password: seed.admin.password })).auth.client_token as string;

  for (const [fqdn, s] of Object.entries(seed.secrets)) {
    await call('POST', `rks/data/${fqdn}`, { data: { certificate: s.certificate, private_key: s.private_key, meta: { ttl: s.ttl ?? 300 } } }, admin);
  }
  const out: ClassicDeployment = { groupTokens: {}, nodeTokens: {} };
  for (const [g, group] of Object.entries(seed.groups)) {
    // CreateGroup: config, policies addToken-<g> and <g>, role addToken-<g>, the group token.
    await call('POST', `rks/data/groups/${g}/config`, { data: { callbackURL: group.callbackURL ?? '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' } }, admin);
    await call('PUT', `sys/policies/acl/addToken-${g}`, { policy: groupTokenAccessPolicy(g) }, admin);
    await call('PUT', `sys/policies/acl/${g}`, { policy: GROUP_INIT_ACCESS_POLICY }, admin);
    await call('POST', `auth/token/roles/addToken-${g}`, { allowed_policies: [`addToken-${g}`], disallowed_policies: ['admin'], orphan: true, token_no_default_policy: true, period: '2678400' }, admin);
    const gt = (await call('POST', `auth/token/create/addToken-${g}`, { meta: { groupname: g } }, admin)).auth.client_token as string;
    await call('POST', `rks/data/groups/${g}/grouptoken`, { data: { groupToken: gt } }, admin);
    out.groupTokens[g] = gt;
    // AddSecretToGroup: the list, then the node policy naming every secret.
    await call('POST', `rks/data/groups/${g}/secret-list`, { data: { secrets: group.secrets } }, admin);
    await call('PUT', `sys/policies/acl/${g}`, { policy: groupSecretAccessPolicy(group.secrets) }, admin);
    // RegisterNode, with the group token: the node's role, then its token.
    for (const n of group.nodes) {
      await call('POST', `auth/token/roles/${g}-${n}`, { allowed_policies: [g], disallowed_policies: [`addToken-${g}`], period: '600' }, gt);
      out.nodeTokens[`${g}/${n}`] = (await call('POST', `auth/token/create/${g}-${n}`, {}, gt)).auth.client_token as string;
    }
  }
  return out;
}

/**
 * Everything of a Vault that an rks or a classic RKS touches, for before/after comparisons:
 * mounts, auth methods and their tuning, every policy's text, every token role, every userpass
 * user, and the whole rks/ KV tree with each entry's current data and version.
 */
export async function vaultState(addr: string, rootToken: string): Promise<Record<string, unknown>> {
  const get = async (path: string) => {
    const res = await fetch(`${addr}/v1/${path}`, { headers: { 'X-Vault-Token': rootToken } });
    return res.status === 200 ? ((await res.json()) as any).data : null;
  };
  const list = async (path: string): Promise<string[]> => ((await get(`${path}?list=true`))?.keys as string[] | undefined)?.sort() ?? [];
  const state: Record<string, unknown> = { mounts: await get('sys/mounts'), auth: await get('sys/auth') };
  for (const p of await list('sys/policies/acl')) state[`policy ${p}`] = (await get(`sys/policies/acl/${p}`))?.policy;
  for (const r of await list('auth/token/roles')) state[`role ${r}`] = await get(`auth/token/roles/${r}`);
  for (const m of ['userpass', 'rks-service']) state[`tune ${m}`] = await get(`sys/auth/${m}/tune`);
  for (const u of await list('auth/userpass/users')) state[`user ${u}`] = await get(`auth/userpass/users/${u}`);
  const walk = async (prefix: string): Promise<void> => {
    for (const k of await list(`rks/metadata/${prefix}`)) {
      if (k.endsWith('/')) await walk(prefix + k);
      else {
        const entry = await get(`rks/data/${prefix}${k}`);
        state[`kv ${prefix}${k}`] = entry && { data: entry.data, version: entry.metadata?.version };
      }
    }
  };
  await walk('');
  return state;
}
