import { KV_MOUNT, PKI_MOUNT, PREFIX, SERVICE_AUTH_PATH, SERVICE_ROLE, USERPASS_PATH, kvPath, patternReaches } from '../vault/layout';
import type { Identity, KvStore, SurveyStore, TokenStore } from '../vault/stores';

/**
 * What rks owns in Vault but found there before it ever ran: made by someone else (on a Vault
 * a classic RKS served, anything its edges could mint). rks trusts and adopts none of it: init
 * refuses while any exists, and a migration's plan removes each, listed.
 */
export interface Predating {
  /** Secrets engines at rks's paths (`rks-pki/`: a CA someone else may hold the key of). */
  mounts: string[];
  /** Auth methods at rks's paths (`rks-service/`), but an AppRole that holds nothing but rks's role. */
  auths: string[];
  /** Policies named like rks's, but for the text rks itself writes there first. */
  policies: string[];
  /** Token roles named like rks's, or that can mint one of its policies. */
  tokenRoles: string[];
  /** Accessors of tokens that carry one of its policies already (Vault lets a token name a policy before it exists). */
  tokens: string[];
  /** Identity entities and groups that carry one of rks's policies. */
  identities: Identity[];
  /** Userpass users, but rks's administrator (init rewrites it), that carry one of rks's policies. */
  users: string[];
  /** Records only rks writes in its KV mount. */
  records: string[];
}

/** Vault trims and lower-cases a policy name where it applies it: `RKS_ADMIN ` is rks_admin there. */
const isRks = (name: string): boolean => name.trim().toLowerCase().startsWith(PREFIX);

export const nothingPredates = (p: Predating): boolean => Object.values(p).every((list) => list.length === 0);

/** The records only rks writes under a group's folder (the classic writes config, secret-list and grouptoken). */
const CLASSIC_GROUP_RECORDS = new Set(['config', 'secret-list', 'grouptoken']);

export interface SurveyOptions {
  /** The policies init writes first, by name and text: a half-way init left them, not a stranger. */
  ours: Record<string, string>;
  /** rks's administrator login (lower case): its userpass user is rewritten by init. */
  adminLogin: string;
}

/**
 * What the classic RKS leaves that no record states: its group tokens' policies and roles
 * (`addToken-<group>`), which rks never names so. Its config record is no proof either way:
 * its edges could delete it, or write one shaped like rks's.
 */
export async function classicSigns(s: Pick<SurveyStore, 'listPolicies'>, tokens: Pick<TokenStore, 'listRoles'>, token: string): Promise<string[]> {
  const classic = (n: string) => /^addtoken-/i.test(n);
  return [...(await s.listPolicies(token)).filter(classic).map((p) => `policy ${JSON.stringify(p)}`), ...(await tokens.listRoles(token)).filter(classic).map((r) => `token role ${JSON.stringify(r)}`)];
}

/** Reads only. */
export async function findPredating(s: SurveyStore, kv: KvStore, tokens: Pick<TokenStore, 'listRoles' | 'readRole' | 'listAccessors' | 'accessorInfo'>, token: string, o: SurveyOptions): Promise<Predating> {
  const mounts = await s.mounts(token);
  const auths = await s.authMethods(token);
  const found: Predating = { mounts: [], auths: [], policies: [], tokenRoles: [], tokens: [], identities: [], users: [], records: [] };
  if (mounts[`${PKI_MOUNT}/`]) found.mounts.push(PKI_MOUNT);
  const service = auths[`${SERVICE_AUTH_PATH}/`];
  if (service && (service.type !== 'approle' || (await s.appRoleRoles(SERVICE_AUTH_PATH, token)).some((r) => r !== SERVICE_ROLE))) found.auths.push(SERVICE_AUTH_PATH);
  for (const name of await s.listPolicies(token)) {
    if (!name.startsWith(PREFIX)) continue;
    if (o.ours[name] !== undefined && (await s.readPolicy(name, token)) === o.ours[name]) continue;
    found.policies.push(name);
  }
  for (const role of await tokens.listRoles(token)) {
    const info = isRks(role) ? null : await tokens.readRole(role, token);
    if (isRks(role) || [...(info?.allowed_policies ?? []), ...(info?.allowed_policies_glob ?? [])].some((p) => patternReaches(p.trim(), PREFIX))) found.tokenRoles.push(role);
  }
  found.tokenRoles.sort();
  for (const accessor of await tokens.listAccessors(token)) {
    if ((await tokens.accessorInfo(accessor, token))?.policies.some(isRks)) found.tokens.push(accessor);
  }
  found.identities = (await s.identities(token)).filter((i) => i.policies.some(isRks));
  if (auths[`${USERPASS_PATH}/`]) {
    for (const user of await s.listUserpassUsers(USERPASS_PATH, token)) {
      if (user.toLowerCase() === o.adminLogin) continue;
      if ((await s.readUserpassUser(USERPASS_PATH, user, token))?.policies.some(isRks)) found.users.push(user);
    }
  }
  if (mounts[`${KV_MOUNT}/`]) found.records = await rksOnlyRecords(kv, token);
  found.policies.sort();
  found.users.sort();
  return found;
}

/** Every record only rks writes: its indexes, ACME state, and what it keeps in each group's folder. */
export async function rksOnlyRecords(kv: KvStore, token: string): Promise<string[]> {
  const out = [...(await everything(kv, token, 'index/')), ...(await everything(kv, token, 'acme/'))];
  for (const dir of (await kv.list(kvPath.groups, token)).filter((k) => k.endsWith('/'))) {
    for (const key of await kv.list(`${kvPath.groups}${dir}`, token)) {
      if (CLASSIC_GROUP_RECORDS.has(key)) continue;
      out.push(...(key.endsWith('/') ? await everything(kv, token, `${kvPath.groups}${dir}${key}`) : [`${kvPath.groups}${dir}${key}`]));
    }
  }
  return out;
}

/** Every record under a folder, however deep (listed keys hold no '/' but a folder's last). */
async function everything(kv: KvStore, token: string, folder: string): Promise<string[]> {
  const out: string[] = [];
  for (const key of await kv.list(folder, token)) out.push(...(key.endsWith('/') ? await everything(kv, token, `${folder}${key}`) : [`${folder}${key}`]));
  return out;
}

/** One line each, strings read from Vault quoted (what a stranger wrote cannot pass for a line of rks's). */
export function predatingLines(p: Predating): string[] {
  const q = (s: string) => JSON.stringify(s);
  return [
    ...p.mounts.map((m) => `secrets engine ${q(`${m}/`)}`),
    ...p.auths.map((a) => `auth method ${q(`${a}/`)}`),
    ...p.policies.map((n) => `policy ${q(n)}`),
    ...p.tokenRoles.map((r) => `token role ${q(r)}`),
    ...p.tokens.map((a) => `token ${q(a)} (accessor) carrying rks's policies`),
    ...p.identities.map((i) => `identity ${i.kind} ${q(i.name)} (${i.id}) with ${i.policies.map(q).join(', ')}`),
    ...p.users.map((u) => `userpass user ${q(u)} with rks's policies`),
    ...p.records.map((r) => `record ${q(`${KV_MOUNT}/data/${r}`)}`),
  ];
}
