import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { mapLimited } from '../concurrency';
import { Conflict } from '../errors';
import type { GroupService } from '../groups/service';
import { type InitService, isClassicRecord } from '../init/service';
import { FQDN_RULE, NAME_RULE, isName, isSecretName, quoted } from '../names';
import { storedFacts } from '../secrets/facts';
import type { Storage } from '../secrets/storage';
import { validateTlsMaterial } from '../secrets/tls';
import { PREFIX, SERVICE_AUTH_PATH, USERPASS_PATH, groupTokenName, kvPath, patternReaches } from '../vault/layout';
import type { Identity, KvStore, PolicyStore, TokenStore } from '../vault/stores';
import type { AccessorInfo, RoleInfo } from '../vault/tokens';
import { classicRegInfo, classicSecretList } from './classic-records';
import { checkRegInfo } from '../records/groups';
import type { SecretData } from '../records/secrets';

/** Names Vault itself relies on: never deleted, whatever a classic group was called. */
const VAULT_POLICIES = new Set(['default', 'root', 'response-wrapping', 'control-group']);

/** Token lookups in flight at once while the migration looks at every token. */
const LOOKUPS = 8;

/** Where a `default` policy (carried by every token) has no business granting anything. */
const GUARDED = ['rks/', 'rks-pki/', `auth/${SERVICE_AUTH_PATH}/`, `auth/${USERPASS_PATH}/users`, 'auth/token/create', 'auth/token/roles', 'sys/policies', 'sys/policy', 'sys/auth', 'sys/mounts', 'sys/leases/revoke', 'sys/raw'];

/** One entry of a classic group's secret list, and what the migration does with it. */
export interface PlannedEntry {
  /** The entry as stored (any JSON value a writer put there). */
  entry: unknown;
  action: 'keep' | 'drop' | 'duplicate';
  reason?: string;
}

export interface ClassicGroup {
  name: string;
  /** Every entry of its secret list, as stored, in order. */
  entries: PlannedEntry[];
  /** The callback rks verifies registrations with afterwards (no OAuth secret: plans are printed). */
  callback: { url: string; oauthURL: string; oauthClientID: string } | null;
  /** SHA-256 of its config record as stored: any change (its OAuth secret too) changes the plan. */
  configHash: string;
  /** Already taken over by an earlier run (a live group token from rks's role). */
  migrated: boolean;
  /** Why rks cannot take it over at all, if it cannot. */
  problem?: string;
}

export interface ClassicSecret {
  name: string;
  /** What rks would refuse in it (placeholder, key mismatch, expired…): reported, kept as is. */
  problem?: string;
}

export interface PlannedToken {
  accessor: string;
  path: string;
  policies: string[];
  reason: string;
}

export interface MigrationPlan {
  /** The config record: the classic's, rks's (an earlier run got that far), or none. */
  config: 'classic' | 'rks' | 'none';
  /** rks never ran here (its own auth mount is absent): all named like rks's was made by someone else. */
  firstRun: boolean;
  groups: ClassicGroup[];
  secrets: ClassicSecret[];
  /** Every classic group's name, lower case (records or not): `addtoken-<g>` and `<g>-*` are theirs. */
  namespaces: string[];
  /** Everything made before the migration that could hold or mint power after it. */
  revoke: { roles: { name: string; reason: string }[]; tokens: PlannedToken[] };
  /**
   * Removed: the classic's policies (of its own shape) and rks-named ones made by others; users;
   * and, on a first run, everything else rks owns that someone else made: records rks alone
   * writes, its secrets engine and auth method, identities carrying its policies.
   */
  remove: { policies: string[]; users: string[]; records: string[]; mounts: string[]; auths: string[]; identities: Identity[] };
  /** Every other token (not the caller's): left alone, unless revoked with `revokeOthers`. */
  otherTokens: PlannedToken[];
  /** What else grants power, as it stood: apply checks nothing of it moved while it revoked. */
  snapshot: Snapshot;
  /** What the migration would lose, one sentence each. */
  losses: string[];
  /** Worth knowing, changes nothing. */
  notes: string[];
  /** Names this plan (all but the token lists, which rules decide): `apply` runs only the plan it names. */
  digest: string;
}

/** A plan `apply` refuses before changing anything. */
export class NotApplied extends Conflict {}

/** Every policy's text (hashed), userpass user, mount and token role of the Vault. */
export interface Snapshot {
  policies: Record<string, string>;
  users: Record<string, string[]>;
  mounts: string[];
  roles: string[];
}

export interface MigrationResult {
  /** The new group token of each group (re-read, not re-issued, for groups an earlier run took over). */
  groupTokens: Record<string, string>;
  revokedTokens: number;
}

interface PolicyReader extends PolicyStore {
  listPolicies(token: string): Promise<string[]>;
}

interface RoleReader extends TokenStore {
  readRole(name: string, token: string): Promise<RoleInfo | null>;
  listAccessors(token: string): Promise<string[]>;
  lookupAccessor(accessor: string, token: string): Promise<AccessorInfo | null>;
  revokeAccessor(accessor: string, token: string): Promise<void>;
}

interface AuthStore {
  authMethods(token: string): Promise<Record<string, { type: string }>>;
  mounts(token: string): Promise<Record<string, { type: string }>>;
  unmount(path: string, token: string): Promise<void>;
  disableAuth(path: string, token: string): Promise<void>;
  deleteIdentity(kind: Identity['kind'], id: string, token: string): Promise<void>;
  listUserpassUsers(mount: string, token: string): Promise<string[]>;
  readUserpassUser(mount: string, user: string, token: string): Promise<{ policies: string[] } | null>;
  deleteUserpassUser(mount: string, user: string, token: string): Promise<void>;
}

const policyPaths = (text: string) => [...text.matchAll(/path\s+"([^"]+)"/g)].map((m) => m[1]!);

/** The classic's node policy: renew-self and read on secrets, nothing else (so a same-named policy of someone else is left alone). */
function isClassicNodePolicy(text: string): boolean {
  const paths = policyPaths(text);
  return paths.includes('auth/token/renew-self') && paths.every((p) => p === 'auth/token/renew-self' || /^rks\/data\/[^*+]+$/.test(p));
}

function isClassicGroupTokenPolicy(text: string, g: string): boolean {
  return text.includes(`path "auth/token/create/${g}-*"`) && text.includes(`path "rks/data/groups/${g}/*"`);
}

function isClassicAdminPolicy(text: string): boolean {
  const paths = policyPaths(text).sort();
  const classic = ['auth/token/create/*', 'auth/token/lookup-self', 'auth/token/renew-self', 'auth/token/revoke', 'auth/token/roles/*', 'rks/*', 'sys/leases/revoke-prefix/auth/token/*', 'sys/policies/*'];
  return JSON.stringify(paths) === JSON.stringify(classic);
}

/** What decides which roles and tokens go: the same rules for the plan and for each sweep of apply. */
interface SweepRules {
  firstRun: boolean;
  /** Lower-case names of every classic group: `addtoken-<g>` and `<g>-*` are theirs. */
  groups: string[];
  /** Roles that must go, with why (from reading them), by lower-case name. */
  roles: Map<string, string>;
  /** The classic's policies being removed. */
  classicPolicies: Set<string>;
  /** Userpass users being removed (lower case): their logins go too. */
  users: Set<string>;
}

/** Why a role must go, from its name alone; null if its name says nothing. */
function roleNameReason(role: string, rules: SweepRules): string | null {
  const r = role.toLowerCase();
  for (const g of rules.groups) {
    if (r === `addtoken-${g}`) return `the classic's group-token role of ${quoted(g)}`;
    if (r.startsWith(`${g}-`)) return `in the role namespace of classic group ${quoted(g)} (its group token could create any role there)`;
  }
  if (rules.firstRun && r.startsWith(PREFIX)) return "named like rks's own roles, but made before rks ran here";
  return null;
}

function tokenReason(t: AccessorInfo, rules: SweepRules): string | null {
  const path = t.path.toLowerCase();
  const viaRole = /^auth\/token\/create\/([^/]+)/.exec(path)?.[1];
  if (viaRole) {
    const why = rules.roles.get(viaRole) ?? roleNameReason(viaRole, rules);
    if (why) return `made through role ${quoted(viaRole)} (${why})`;
  }
  if (rules.firstRun) {
    const rks = t.policies.filter((p) => p.toLowerCase().startsWith(PREFIX));
    if (rks.length) return `carries ${rks.map(quoted).join(', ')} though rks never ran here`;
  }
  const classic = t.policies.filter((p) => rules.classicPolicies.has(p.toLowerCase()));
  if (classic.length) return `carries the classic's ${classic.map(quoted).join(', ')}`;
  const login = new RegExp(`^auth/${USERPASS_PATH}/login/(.+)$`).exec(path)?.[1];
  if (login && rules.users.has(login)) return `a login of userpass user ${quoted(login)}, removed`;
  return null;
}

/**
 * Takes a Vault over from Orange's remote-key-server (the classic RKS), with the Vault root
 * token. Plans from reads alone; applies exactly the plan an administrator read (by its digest),
 * in steps that can each run again, so a migration that stopped half-way is finished by running
 * it again.
 *
 * Everything the classic's edges could write is hostile: each group token of the classic may
 * write its group's records and create any token role in its namespace (and through one, mint
 * the classic's admin policy). So list entries must pass rks's name rules, name a secret that
 * exists and be granted by the classic's own node policy of the group; roles in a classic
 * namespace go whatever their shape; every token that could hold power after the migration is
 * revoked first; rks-named objects that predate rks go; and whatever would be lost is listed.
 */
export class ClassicMigration {
  private readonly kv: KvStore;

  constructor(
    private readonly storage: Storage,
    private readonly policies: PolicyReader,
    private readonly tokens: RoleReader,
    private readonly auth: AuthStore,
    private readonly groups: GroupService,
    private readonly init: InitService,
    /** The rks administrator's login (lower case), which init writes. */
    private readonly adminLogin: string,
  ) {
    this.kv = storage.kv;
  }

  async plan(token: string, progress: (line: string) => void = () => undefined): Promise<MigrationPlan> {
    const { config, firstRun } = await this.startingPoint(token);
    const policyNames = await this.policies.listPolicies(token);
    const losses: string[] = [];
    const notes: string[] = [];
    // Someone else's, whatever it is, when rks never ran here: the classic's edges could mint anything.
    const predating = firstRun ? await this.init.predating(token) : undefined;
    const remove = {
      policies: [] as string[],
      users: [] as string[],
      records: predating?.records ?? [],
      mounts: predating?.mounts ?? [],
      auths: predating?.auths ?? [],
      identities: predating?.identities ?? [],
    };

    const dirs = (await this.kv.list(kvPath.groups, token)).filter((k) => k.endsWith('/')).map((k) => k.slice(0, -1)).sort();
    const roleNames = await this.tokens.listRoles(token);
    // A classic group leaves more than records (which its own token may erase): its token's
    // policy and role. Every group any of them names is a classic namespace.
    const signs = [...policyNames, ...roleNames].map((n) => /^addtoken-(.+)$/i.exec(n)?.[1]?.toLowerCase()).filter((g): g is string => Boolean(g));
    const recordless = [...new Set(signs)].filter((g) => !dirs.some((d) => d.toLowerCase() === g)).sort();
    for (const g of recordless) losses.push(`group ${quoted(g)}: its records are gone (its classic token policy or role remains): not taken over; its tokens and roles are revoked like any classic group's`);
    const { groups, classicPolicies } = await this.planGroups(token, dirs, policyNames, firstRun, losses, notes);
    remove.policies.push(...(await this.policiesToRemove(token, { policyNames, classicPolicies, dirs, recordless, firstRun }, losses, notes)));

    const classicNamed = (p: string) => p === 'admin' || classicPolicies.has(p) || p.startsWith('addtoken-') || dirs.some((g) => g.toLowerCase() === p);
    if ((await this.auth.authMethods(token))[`${USERPASS_PATH}/`]) remove.users.push(...(await this.classicUsers(token, classicNamed, firstRun, notes)));
    const rules: SweepRules = {
      firstRun,
      groups: [...new Set([...dirs.map((g) => g.toLowerCase()), ...recordless])],
      roles: new Map(),
      classicPolicies,
      users: new Set(remove.users.map((u) => u.toLowerCase())),
    };
    progress('reading token roles');
    const roles = await this.classicRoles(token, roleNames, rules, notes);
    const { matching, others } = await this.lookAtTokens(token, rules, progress);

    const secrets = await this.classicSecrets(token, notes);
    const namespaces = rules.groups;
    const snapshot = await this.snapshot(token, firstRun);
    const named = { config, firstRun, namespaces, groups, secrets, roles, remove, losses, notes, snapshot };
    // Whole: the plan names what a classic edge could write (a config), so no birthday search may match two plans.
    const digest = createHash('sha256').update(JSON.stringify(named)).digest('hex');
    return { config, firstRun, namespaces, groups, secrets, revoke: { roles, tokens: matching }, remove, otherTokens: others, snapshot, losses, notes, digest };
  }

  /** Whose config record this Vault holds, and whether rks ever ran here with this admin login. */
  private async startingPoint(token: string): Promise<{ config: MigrationPlan['config']; firstRun: boolean }> {
    const record = await this.kv.read<Record<string, unknown>>(kvPath.config, token);
    const config = !record ? 'none' : isClassicRecord(record.data) ? 'classic' : 'rks';
    // Not from anything a classic edge could write (records, mounts, roles): from the secret id
    // of rks's own identity, derived from the admin password it does not know.
    const firstRun = !(await this.init.ranHere(token));
    if (config === 'rks' && firstRun) {
      throw new Conflict("this Vault holds rks's config record, but no rks identity for this admin login and password: an rks of an older layout ('rks init' brings it up to date), or another password");
    }
    return { config, firstRun };
  }

  /** Each group folder: taken over, or why not; and the classic policies found for them. */
  private async planGroups(token: string, dirs: string[], policyNames: string[], firstRun: boolean, losses: string[], notes: string[]): Promise<{ groups: ClassicGroup[]; classicPolicies: Set<string> }> {
    const groups: ClassicGroup[] = [];
    const classicPolicies = new Set<string>();
    for (const g of dirs) {
      if (!isName(g)) {
        const problem = `rks group names are ${NAME_RULE}, in lower case`;
        groups.push({ name: g, entries: [], callback: null, configHash: '', migrated: false, problem });
        losses.push(`group ${quoted(g)}: not taken over (${problem}); its records stay as they are and its edges lose access`);
        continue;
      }
      if (!(await this.storage.groups.exists(token, g))) {
        notes.push(`rks/data/groups/${g}/ has no config: not a group (for the classic either), left alone`);
        continue;
      }
      for (const p of [`addtoken-${g}`, g]) {
        if (!policyNames.includes(p) || VAULT_POLICIES.has(p)) continue;
        const text = (await this.policies.readPolicy(p, token)) ?? '';
        if (p === g ? isClassicNodePolicy(text) : isClassicGroupTokenPolicy(text, g)) classicPolicies.add(p);
        else notes.push(`policy ${quoted(p)} has the classic's name but not its shape: left alone`);
      }
      groups.push(await this.planGroup(token, g, firstRun, losses, notes));
    }
    return { groups, classicPolicies };
  }

  /**
   * The policies to remove: the classic's (its admin's, its groups', those of groups whose
   * records are gone; added to `classicPolicies`) and, when rks never ran here, any planted
   * under rks's prefix. What looks like neither, and a default policy granting what rks
   * guards, are said.
   */
  private async policiesToRemove(
    token: string,
    found: { policyNames: string[]; classicPolicies: Set<string>; dirs: string[]; recordless: string[]; firstRun: boolean },
    losses: string[],
    notes: string[],
  ): Promise<string[]> {
    const { policyNames, classicPolicies, dirs, recordless, firstRun } = found;
    if (policyNames.includes('admin')) {
      if (isClassicAdminPolicy((await this.policies.readPolicy('admin', token)) ?? '')) classicPolicies.add('admin');
      else notes.push("policy 'admin' is not the classic's: left alone");
    }
    for (const g of recordless) {
      if (policyNames.includes(`addtoken-${g}`)) classicPolicies.add(`addtoken-${g}`);
      if (policyNames.includes(g) && !VAULT_POLICIES.has(g) && isClassicNodePolicy((await this.policies.readPolicy(g, token)) ?? '')) classicPolicies.add(g);
    }
    const planted = firstRun ? policyNames.filter((p) => p.startsWith(PREFIX)) : [];
    const unknown = policyNames.filter((p) => !VAULT_POLICIES.has(p) && !classicPolicies.has(p) && !p.startsWith(PREFIX) && !dirs.some((g) => [g.toLowerCase(), `addtoken-${g.toLowerCase()}`].includes(p)));
    if (unknown.length) notes.push(`policies neither the classic's nor rks's, left alone (review them: the classic's admin policy could write any): ${unknown.map(quoted).join(', ')}`);
    const guarded = policyPaths((await this.policies.readPolicy('default', token)) ?? '').filter((p) => GUARDED.some((g) => patternReaches(p, g)));
    if (guarded.length) {
      losses.push(`the default policy, which every token carries, grants ${guarded.map(quoted).join(', ')}: restore it first (the classic's admin policy could write it), or accept that every token keeps that`);
    }
    return [...[...classicPolicies].sort(), ...planted];
  }

  /**
   * Applies the plan named `digest`: the plan is made again here and must be the same, so what
   * runs is what the administrator read. `revokeOthers` revokes every other token too (not the
   * caller's), on a Vault that served the classic alone.
   */
  async apply(token: string, digest: string, opts: { revokeOthers?: boolean } = {}, progress: (line: string) => void = () => undefined): Promise<{ plan: MigrationPlan; result: MigrationResult }> {
    const plan = await this.plan(token, progress);
    if (plan.digest !== digest) {
      throw new NotApplied(`this is not the plan ${quoted(digest)} (it is ${plan.digest} now): read the dry run again and apply the plan it shows`);
    }
    const nothingLeft = plan.groups.every((g) => g.migrated || g.problem) && plan.remove.policies.length + plan.revoke.roles.length + plan.revoke.tokens.length === 0;
    if (plan.config === 'none' && nothingLeft) throw new NotApplied('no classic RKS deployment here: nothing to migrate');
    if (opts.revokeOthers && !plan.firstRun) throw new NotApplied('--revoke-other-tokens only applies before rks has run here: the other tokens now include rks\'s own');

    // First the power of everything made before: every condemned token, the roles that made
    // them, then again until none is left (a prefix revocation misses a path in another case,
    // and tokens still alive during the sweep could make more).
    const rules: SweepRules = {
      firstRun: plan.firstRun,
      groups: plan.namespaces,
      roles: new Map(plan.revoke.roles.map((r) => [r.name.toLowerCase(), r.reason])),
      classicPolicies: new Set(plan.remove.policies.filter((p) => !p.startsWith(PREFIX))),
      users: new Set(plan.remove.users.map((u) => u.toLowerCase())),
    };
    const self = opts.revokeOthers ? (await this.tokens.lookupSelf(token)).accessor : undefined;
    let revoked = 0;
    let left: PlannedToken[] = [];
    for (let pass = 0; ; pass++) {
      // The plan just made looked at every token already: the first sweep uses what it found.
      const { matching, others } = pass === 0 ? { matching: plan.revoke.tokens, others: plan.otherTokens } : await this.lookAtTokens(token, rules, progress);
      left = opts.revokeOthers ? [] : others;
      const found = opts.revokeOthers ? [...matching, ...others.filter((t) => t.accessor !== self)] : matching;
      if (pass > 0 && found.length === 0) break;
      if (pass === 5) throw new Conflict(`tokens that must go keep appearing (${found.length} after ${pass} sweeps): is a classic RKS still running?`);
      for (const t of found) await this.tokens.revokeAccessor(t.accessor, token);
      revoked += found.length;
      if (pass > 0) continue;
      for (const r of plan.revoke.roles) {
        await this.tokens.revokeRoleTokens(r.name, token);
        await this.tokens.deleteRole(r.name, token);
      }
    }
    progress(`revoked ${revoked} token(s) made before the migration; removed ${plan.revoke.roles.length} role(s)`);

    // Nobody who could change anything is left: all must still be as the plan showed (a token
    // the sweep had not reached yet could have acted; what it made would show here).
    const known = new Set(plan.otherTokens.map((t) => t.accessor));
    const newcomers = plan.firstRun ? left.filter((t) => !known.has(t.accessor)) : [];
    if (newcomers.length) throw new Conflict(`tokens appeared while the migration revoked the others (${newcomers.map((t) => t.accessor).join(', ')}): run the dry run again`);
    const now = await this.snapshot(token, plan.firstRun);
    const gone = new Set(plan.revoke.roles.map((r) => r.name));
    const expected = { ...plan.snapshot, roles: plan.snapshot.roles.filter((r) => !gone.has(r)) };
    if (!isDeepStrictEqual(now, expected)) throw new Conflict('policies, users, mounts or roles changed while the migration revoked tokens: run the dry run again');
    for (const g of plan.groups) {
      if (g.problem) continue;
      const now = await this.planGroup(token, g.name, plan.firstRun, [], []);
      if (!isDeepStrictEqual(now, g)) throw new Conflict(`group '${g.name}' changed while its tokens were being revoked: run the dry run again`);
    }
    for (const g of plan.groups) if (!g.problem) await this.normalise(token, g);
    for (const path of plan.remove.records) await this.kv.destroy(path, token);
    for (const i of plan.remove.identities) await this.auth.deleteIdentity(i.kind, i.id, token);
    for (const a of plan.remove.auths) await this.auth.disableAuth(a, token);
    for (const m of plan.remove.mounts) await this.auth.unmount(m, token);
    // rks-named ones, and the classic's group-token policies (no token carries them now): rks's
    // init takes a Vault that still has them for a classic deployment.
    for (const p of plan.remove.policies.filter((p) => p.startsWith(PREFIX) || /^addtoken-/i.test(p))) await this.policies.deletePolicy(p, token);
    for (const u of plan.remove.users) await this.auth.deleteUserpassUser(USERPASS_PATH, u, token);

    if (plan.config === 'classic') {
      // Its config record holds the classic's admin password: every version goes.
      await this.kv.destroy(kvPath.config, token);
      progress('classic config record destroyed (it held the classic admin password)');
    }
    try {
      await this.init.init(token);
      progress('rks initialised (KV settings, admin policy and user, service identity, PKI)');
    } catch (err) {
      if (!(err instanceof Conflict && err.code === 'already_initialised')) throw err;
    }

    const result: MigrationResult = { groupTokens: {}, revokedTokens: revoked };
    for (const g of plan.groups) {
      if (g.problem) continue;
      const keep = g.entries.filter((e) => e.action === 'keep').map((e) => e.entry as string);
      result.groupTokens[g.name] = g.migrated ? await this.groups.groupToken(token, g.name) : await this.groups.adopt(token, g.name, keep);
      const kept = g.entries.filter((e) => e.action === 'keep').length;
      progress(`group ${g.name}: ${kept} secret(s), ${g.callback ? 'callback verified' : 'no callback'}, ${g.migrated ? 'already taken over' : 'new group token'}`);
    }
    // The classic's secrets, in no group or in one, described for the inventory and the expiry metrics.
    const { described } = await this.storage.catalog.reconcile(token, await this.kv.list(kvPath.secrets, token));
    progress(`inventory: ${described} secret(s) catalogued`);
    // The classic's policies last: until the groups are taken over, its node policies are what
    // says which entries of their lists the classic really granted (and no token carries them now).
    for (const p of plan.remove.policies.filter((p) => !p.startsWith(PREFIX) && !/^addtoken-/i.test(p))) await this.policies.deletePolicy(p, token);
    progress(`removed ${plan.remove.policies.length} policy(ies), ${plan.remove.users.length} user(s), ${plan.remove.records.length} record(s)`);
    return { plan, result };
  }

  /** The userpass users a classic (or, on a first run, a planted rks policy) gave its policies: removed. */
  private async classicUsers(token: string, classicNamed: (policy: string) => boolean, firstRun: boolean, notes: string[]): Promise<string[]> {
    const users: string[] = [];
    for (const user of await this.auth.listUserpassUsers(USERPASS_PATH, token)) {
      const u = user.toLowerCase();
      if (u === this.adminLogin) continue;
      const info = await this.auth.readUserpassUser(USERPASS_PATH, user, token);
      if (!info) continue;
      const suspect = info.policies.filter((p) => classicNamed(p) || (firstRun && p.startsWith(PREFIX)));
      if (suspect.length) users.push(user);
      else if (info.policies.some((p) => p.startsWith(PREFIX))) notes.push(`userpass user ${quoted(user)} carries rks's policies (${info.policies.map(quoted).join(', ')}): left alone`);
    }
    return users;
  }

  /** The token roles to delete, each with why (the rules learn them: tokens from them are revoked), in name order. */
  private async classicRoles(token: string, roleNames: string[], rules: SweepRules, notes: string[]): Promise<{ name: string; reason: string }[]> {
    const roles: { name: string; reason: string }[] = [];
    const kept: string[] = [];
    for (const role of roleNames) {
      const why = roleNameReason(role, rules) ?? (await this.roleReason(role, token));
      if (!why) {
        if (!role.toLowerCase().startsWith(PREFIX)) kept.push(role);
        continue;
      }
      roles.push({ name: role, reason: why });
      rules.roles.set(role.toLowerCase(), why);
    }
    if (kept.length) notes.push(`other token roles, left alone: ${kept.sort().map(quoted).join(', ')}`);
    return roles.sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** The classic's secrets, each checked as rks would take it; names rks cannot serve are noted. */
  private async classicSecrets(token: string, notes: string[]): Promise<ClassicSecret[]> {
    const secrets: ClassicSecret[] = [];
    for (const name of (await this.kv.list(kvPath.secrets, token)).filter((k) => !k.endsWith('/') && k !== kvPath.config).sort()) {
      if (!isSecretName(name)) {
        notes.push(`secret ${quoted(name)} stays in Vault, but rks cannot serve it: a secret name is ${FQDN_RULE}, in lower case`);
        continue;
      }
      const entry = await this.storage.records.read(token, name);
      if (entry) secrets.push({ name, ...this.check(name, entry.data as SecretData) });
    }
    return secrets;
  }

  private async planGroup(token: string, g: string, firstRun: boolean, losses: string[], notes: string[]): Promise<ClassicGroup> {
    const migrated = !firstRun && (await this.ownGroupToken(token, g));
    // Taken over already: its associations are rks's own (copies, or a list of an older rks).
    const list = migrated ? { entries: await this.storage.copies.names(token, g) } : classicSecretList((await this.kv.read<unknown>(kvPath.groupSecrets(g), token))?.data ?? null);
    let entries: PlannedEntry[] = [];
    if ('unreadable' in list) losses.push(`group '${g}': its secret list is unreadable (${list.unreadable}): taken over with no secrets`);
    else entries = await this.judge(token, list.entries, migrated ? null : await this.classicGrants(token, g));
    for (const e of entries) {
      if (e.action === 'drop') losses.push(`group '${g}': list entry ${quoted(e.entry)} dropped: ${e.reason}`);
    }

    let callback: ClassicGroup['callback'] = null;
    const stored = (await this.storage.groups.config(token, g))?.data;
    const configHash = createHash('sha256').update(JSON.stringify(stored ?? null)).digest('hex');
    const config = classicRegInfo(stored);
    if ('unreadable' in config) {
      losses.push(`group '${g}': its config is unreadable (${config.unreadable}): left as it is, and its nodes cannot register until an administrator sets the group again (PUT /rks/v1/group/${g})`);
    } else if (config.info.callbackURL) {
      const info = config.info;
      callback = { url: info.callbackURL, oauthURL: info.oauthURL, oauthClientID: info.oauthClientID };
      try {
        checkRegInfo(info);
        notes.push(`group '${g}': rks checks the TLS certificate of ${quoted(info.callbackURL)} and ${quoted(info.oauthURL)} (the classic never did): trust their CA with --callback-ca-file unless it is a public one`);
      } catch (err) {
        losses.push(`group '${g}': rks refuses its callback settings (${(err as Error).message}): kept, and its nodes cannot register until an administrator sets the group again (PUT /rks/v1/group/${g})`);
      }
    }
    return { name: g, entries, callback, configHash, migrated };
  }

  /**
   * The secrets the classic's own node policy of the group grants, or why there are none. Its
   * edges could write their list but not that policy: an entry the policy does not grant was
   * never readable by the group's nodes.
   */
  private async classicGrants(token: string, g: string): Promise<Set<string> | string> {
    const text = await this.policies.readPolicy(g, token);
    if (text === null) return `the classic's node policy of '${g}' is missing`;
    if (!isClassicNodePolicy(text)) return `the classic's node policy of '${g}' is not of its shape`;
    return new Set(policyPaths(text).filter((p) => p.startsWith('rks/data/')).map((p) => p.slice('rks/data/'.length)));
  }

  /** Whether the group's token record names a live token made through rks's own role for it. */
  private async ownGroupToken(token: string, g: string): Promise<boolean> {
    const record = await this.kv.read<{ accessor?: unknown }>(kvPath.groupTokenAccessor(g), token);
    const accessor = record?.data.accessor;
    if (typeof accessor !== 'string' || !accessor) return false;
    const info = await this.tokens.lookupAccessor(accessor, token);
    return info !== null && info.path.toLowerCase() === `auth/token/create/${groupTokenName(g)}`;
  }

  /**
   * What becomes of each entry of a secret list: only rks secret names of secrets that exist
   * stay, and, before the group is taken over, only those its classic node policy grants.
   */
  private async judge(token: string, entries: unknown[], grants: Set<string> | string | null): Promise<PlannedEntry[]> {
    const seen = new Set<string>();
    const out: PlannedEntry[] = [];
    for (const entry of entries) {
      if (typeof entry !== 'string') out.push({ entry, action: 'drop', reason: 'not a string' });
      else if (!isSecretName(entry)) {
        const lower = entry.toLowerCase();
        const reason = isSecretName(lower) ? `rks names secrets in lower case and would look for '${lower}'` : `not a secret name rks accepts (${FQDN_RULE})`;
        out.push({ entry, action: 'drop', reason });
      } else if (seen.has(entry)) out.push({ entry, action: 'duplicate' });
      else if (typeof grants === 'string') out.push({ entry, action: 'drop', reason: grants });
      else if (grants && !grants.has(entry)) {
        out.push({ entry, action: 'drop', reason: "the classic's node policy of the group does not grant it (its nodes could never read it: written straight into Vault)" });
      } else if (!(await this.storage.records.exists(token, entry))) {
        out.push({ entry, action: 'drop', reason: "no such secret (the classic's API only lists secrets it holds: this entry was written straight into Vault)" });
      } else {
        seen.add(entry);
        out.push({ entry, action: 'keep' });
      }
    }
    return out;
  }

  /** Rewrites a group's config in rks's shape (its list becomes copies when the group is adopted). */
  private async normalise(token: string, g: ClassicGroup): Promise<void> {
    const configEntry = await this.storage.groups.config(token, g.name);
    const config = classicRegInfo(configEntry?.data);
    if ('info' in config && !isDeepStrictEqual(configEntry?.data, config.info)) await this.storage.groups.writeConfig(token, g.name, config.info);
  }

  /** Records under a group's folder that only rks writes (its token accessor, its nodes, revoked nodes). */
  /** Why a role that its name does not condemn must go anyway: it can mint tokens with rks's policies. */
  private async roleReason(role: string, token: string): Promise<string | null> {
    if (role.toLowerCase().startsWith(PREFIX)) return null;
    const info = await this.tokens.readRole(role, token);
    if (!info) return null;
    const reach = [...info.allowed_policies, ...info.allowed_policies_glob].filter((p) => patternReaches(p, PREFIX));
    if (reach.length) return `can mint tokens with rks's policies (${reach.map(quoted).join(', ')})`;
    const [only] = info.allowed_policies;
    if (info.allowed_policies.length === 1 && info.disallowed_policies.length === 1 && info.disallowed_policies[0] === `addtoken-${only}`) {
      return 'a classic node role (of a group deleted since)';
    }
    return null;
  }

  /** Once rks ran here its own roles come and go with registrations: only others are looked at. */
  private async snapshot(token: string, firstRun: boolean): Promise<Snapshot> {
    const policies: Record<string, string> = {};
    for (const name of (await this.policies.listPolicies(token)).filter((p) => firstRun || !p.startsWith(PREFIX)).sort()) {
      policies[name] = createHash('sha256').update((await this.policies.readPolicy(name, token)) ?? '').digest('hex');
    }
    const users: Record<string, string[]> = {};
    if ((await this.auth.authMethods(token))[`${USERPASS_PATH}/`]) {
      for (const u of (await this.auth.listUserpassUsers(USERPASS_PATH, token)).sort()) users[u] = (await this.auth.readUserpassUser(USERPASS_PATH, u, token))?.policies.sort() ?? [];
    }
    const describe = (m: Record<string, { type: string }>, kind: string) => Object.entries(m).map(([path, v]) => `${kind} ${path} ${v.type}`);
    const mounts = [...describe(await this.auth.authMethods(token), 'auth'), ...describe(await this.auth.mounts(token), 'secrets')].sort();
    const roles = (await this.tokens.listRoles(token)).filter((r) => firstRun || !r.toLowerCase().startsWith(PREFIX)).sort();
    return { policies, users, mounts, roles };
  }

  /** Every token Vault lists, looked at: those the rules condemn, and the others (the caller's aside). */
  private async lookAtTokens(token: string, rules: SweepRules, progress: (line: string) => void): Promise<{ matching: PlannedToken[]; others: PlannedToken[] }> {
    const accessors = await this.tokens.listAccessors(token);
    progress(`looking at ${accessors.length} token(s)`);
    const self = (await this.tokens.lookupSelf(token)).accessor;
    const infos = await mapLimited(accessors, LOOKUPS, (a) => this.tokens.lookupAccessor(a, token));
    const matching: PlannedToken[] = [];
    const others: PlannedToken[] = [];
    for (const t of infos) {
      if (!t || t.accessor === self) continue;
      const reason = tokenReason(t, rules);
      (reason ? matching : others).push({ accessor: t.accessor, path: t.path, policies: t.policies, reason: reason ?? '' });
    }
    const order = (a: PlannedToken, b: PlannedToken) => (a.path === b.path ? (a.accessor < b.accessor ? -1 : 1) : a.path < b.path ? -1 : 1);
    return { matching: matching.sort(order), others: others.sort(order) };
  }

  private check(fqdn: string, data: SecretData): { problem?: string } {
    const facts = storedFacts(data.certificate ?? '');
    if ('invalid' in facts) return { problem: 'not a readable PEM certificate (kept as is, flagged invalid in the inventory)' };
    try {
      validateTlsMaterial(fqdn, data.certificate, data.private_key ?? '');
      return {};
    } catch (err) {
      return { problem: `${(err as Error).message} (kept as is; nodes still receive it)` };
    }
  }
}
