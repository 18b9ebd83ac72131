import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { mapLimited } from '../concurrency';
import { BadRequest, Conflict } from '../errors';
import { checkRegInfo } from '../groups/records';
import type { GroupService } from '../groups/service';
import { type InitService, isClassicRecord } from '../init/service';
import { FQDN_RULE, NAME_RULE, isName, isSecretName, quoted } from '../names';
import { storedFacts } from '../secrets/facts';
import type { SecretData } from '../secrets/service';
import { validateTlsMaterial } from '../secrets/tls';
import { PREFIX, USERPASS_PATH, groupTokenName, kvPath } from '../vault/layout';
import type { KvStore, PolicyStore, TokenStore } from '../vault/stores';
import type { AccessorInfo, RoleInfo } from '../vault/tokens';
import { classicRegInfo, classicSecretList, goField, patternReaches } from './classic-records';

/** Names Vault itself relies on: never deleted, whatever a classic group was called. */
const VAULT_POLICIES = new Set(['default', 'root', 'response-wrapping', 'control-group']);

/** Token lookups in flight at once while the migration looks at every token. */
const LOOKUPS = 8;

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
  /** Already taken over by an earlier run (rks's group token exists). */
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
  groups: ClassicGroup[];
  secrets: ClassicSecret[];
  /** Everything made before the migration that could hold or mint power after it. */
  revoke: { roles: { name: string; reason: string }[]; tokens: PlannedToken[] };
  /** The classic's policies (of its own shape) and its admin user, removed. */
  remove: { policies: string[]; users: string[] };
  /** What the migration would lose, one sentence each: `apply` refuses unless `digest` is accepted. */
  losses: string[];
  /** Names `losses` exactly (null when there are none). */
  digest: string | null;
  /** Worth knowing, changes nothing. */
  notes: string[];
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

interface UserStore {
  readUserpassUser(mount: string, user: string, token: string): Promise<{ policies: string[] } | null>;
  deleteUserpassUser(mount: string, user: string, token: string): Promise<void>;
}

/** The classic's node policy: renew-self and read on secrets, nothing else (so a same-named policy of someone else is left alone). */
function isClassicNodePolicy(text: string): boolean {
  const paths = [...text.matchAll(/path\s+"([^"]+)"/g)].map((m) => m[1]!);
  return paths.includes('auth/token/renew-self') && paths.every((p) => p === 'auth/token/renew-self' || /^rks\/data\/[^*+]+$/.test(p));
}

function isClassicGroupTokenPolicy(text: string, g: string): boolean {
  return text.includes(`path "auth/token/create/${g}-*"`) && text.includes(`path "rks/data/groups/${g}/*"`);
}

function isClassicAdminPolicy(text: string): boolean {
  const paths = [...text.matchAll(/path\s+"([^"]+)"/g)].map((m) => m[1]).sort();
  const classic = ['auth/token/create/*', 'auth/token/lookup-self', 'auth/token/renew-self', 'auth/token/revoke', 'auth/token/roles/*', 'rks/*', 'sys/leases/revoke-prefix/auth/token/*', 'sys/policies/*'];
  return JSON.stringify(paths) === JSON.stringify(classic);
}

/** What decides which roles and tokens go: the same rules for the plan and for each sweep of apply. */
interface SweepRules {
  /** rks has never run here: anything in its namespace was made by someone else. */
  firstRun: boolean;
  /** Lower-case names of every classic group: `addtoken-<g>` and `<g>-*` are theirs. */
  groups: string[];
  /** Roles that must go, with why (from reading them). */
  roles: Map<string, string>;
  /** The classic's policies being removed. */
  classicPolicies: Set<string>;
  /** The classic's admin login (lower case), while its config record says so. */
  classicAdmin?: string;
}

/** Why a role must go, from its name alone; null if its name says nothing. */
function roleNameReason(role: string, rules: SweepRules): string | null {
  const r = role.toLowerCase();
  for (const g of rules.groups) {
    if (r === `addtoken-${g}`) return `the classic's group-token role of '${g}'`;
    if (r.startsWith(`${g}-`)) return `in classic group '${g}''s role namespace (its group token could create any role there)`;
  }
  if (rules.firstRun && r.startsWith(PREFIX)) return "named like rks's own roles, but made before rks ran here";
  return null;
}

function tokenReason(t: AccessorInfo, rules: SweepRules): string | null {
  const path = t.path.toLowerCase();
  const viaRole = /^auth\/token\/create\/([^/]+)/.exec(path)?.[1];
  if (viaRole) {
    const why = rules.roles.get(viaRole) ?? roleNameReason(viaRole, rules);
    if (why) return `made through role '${viaRole}' (${why})`;
  }
  if (rules.firstRun) {
    const rks = t.policies.filter((p) => p.toLowerCase().startsWith(PREFIX));
    if (rks.length) return `carries ${rks.join(', ')} though rks never ran here`;
  }
  const classic = t.policies.filter((p) => rules.classicPolicies.has(p.toLowerCase()));
  if (classic.length) return `carries the classic's ${classic.join(', ')}`;
  if (rules.classicAdmin && path === `auth/${USERPASS_PATH}/login/${rules.classicAdmin}`) return "a login of the classic's administrator";
  return null;
}

/**
 * Takes a Vault over from Orange's remote-key-server (the classic RKS), with the Vault root
 * token. Plans from reads alone; applies in steps that can each run again, so a migration that
 * stopped half-way is finished by running it again.
 *
 * Everything the classic's edges could write is hostile: each group token of the classic may
 * write its group's records and create any token role in its namespace. So list entries pass
 * rks's name rules and must name a secret that exists; roles in a classic namespace go whatever
 * their shape; every token made before the migration that could hold power after it (made
 * through such a role, carrying the classic's policies, or carrying rks's before rks ran here)
 * is revoked; and whatever would be lost is listed, and only applied when accepted by digest.
 */
export class ClassicMigration {
  constructor(
    private readonly kv: KvStore,
    private readonly policies: PolicyReader,
    private readonly tokens: RoleReader,
    private readonly users: UserStore,
    private readonly groups: GroupService,
    private readonly init: InitService,
    /** The rks administrator's login (lower case), which init writes. */
    private readonly adminLogin: string,
  ) {}

  async plan(token: string, progress: (line: string) => void = () => undefined): Promise<MigrationPlan> {
    const record = await this.kv.read<Record<string, unknown>>(kvPath.config, token);
    const config = !record ? 'none' : isClassicRecord(record.data) ? 'classic' : 'rks';
    const policyNames = await this.policies.listPolicies(token);
    const losses: string[] = [];
    const notes: string[] = [];
    const remove = { policies: [] as string[], users: [] as string[] };

    const groupNames = (await this.kv.list(kvPath.groups, token)).filter((k) => k.endsWith('/')).map((k) => k.slice(0, -1)).sort();
    const groups: ClassicGroup[] = [];
    for (const g of groupNames) {
      if (!isName(g)) {
        const problem = `rks group names are ${NAME_RULE}, in lower case`;
        groups.push({ name: g, entries: [], callback: null, migrated: false, problem });
        losses.push(`group ${quoted(g)}: not taken over (${problem}); its records stay as they are and its edges lose access`);
        continue;
      }
      if (!(await this.kv.exists(kvPath.groupConfig(g), token))) continue;
      const group = await this.planGroup(token, g, losses, notes);
      groups.push(group);
      for (const p of [`addtoken-${g}`, g]) {
        if (!policyNames.includes(p) || VAULT_POLICIES.has(p)) continue;
        const text = (await this.policies.readPolicy(p, token)) ?? '';
        if (p === g ? isClassicNodePolicy(text) : isClassicGroupTokenPolicy(text, g)) remove.policies.push(p);
        else notes.push(`policy '${p}' has the classic's name but not its shape: left alone`);
      }
    }
    if (policyNames.includes('admin')) {
      if (isClassicAdminPolicy((await this.policies.readPolicy('admin', token)) ?? '')) remove.policies.push('admin');
      else notes.push("policy 'admin' is not the classic's: left alone");
    }

    const classicAdmin = config === 'classic' ? classicAdminLogin(record!.data) : undefined;
    if (classicAdmin && classicAdmin !== this.adminLogin) {
      const user = await this.users.readUserpassUser(USERPASS_PATH, classicAdmin, token);
      if (user && user.policies.every((p) => p === 'admin' || p === 'default')) remove.users.push(classicAdmin);
      else if (user) notes.push(`userpass user '${classicAdmin}' (the classic's admin login) has other policies (${user.policies.join(', ')}): left alone`);
    }

    const rules: SweepRules = {
      firstRun: config === 'classic',
      groups: groupNames.map((g) => g.toLowerCase()),
      roles: new Map(),
      classicPolicies: new Set(remove.policies),
      ...(classicAdmin ? { classicAdmin } : {}),
    };
    progress('reading token roles');
    const roles: { name: string; reason: string }[] = [];
    for (const role of await this.tokens.listRoles(token)) {
      const why = roleNameReason(role, rules) ?? (await this.roleReason(role, token));
      if (!why) continue;
      roles.push({ name: role, reason: why });
      rules.roles.set(role.toLowerCase(), why);
    }
    const tokens = await this.matchingTokens(token, rules, progress);

    const secrets: ClassicSecret[] = [];
    for (const name of (await this.kv.list(kvPath.secrets, token)).filter((k) => !k.endsWith('/') && k !== kvPath.config).sort()) {
      if (!isSecretName(name)) {
        notes.push(`secret ${quoted(name)} stays in Vault, but rks cannot serve it: a secret name is ${FQDN_RULE}, in lower case`);
        continue;
      }
      const entry = await this.kv.read<SecretData>(kvPath.secret(name), token);
      if (entry) secrets.push({ name, ...this.check(name, entry.data) });
    }

    const digest = losses.length ? createHash('sha256').update(losses.join('\n')).digest('hex').slice(0, 12) : null;
    return {
      config,
      groups,
      secrets,
      revoke: { roles: roles.sort((a, b) => (a.name < b.name ? -1 : 1)), tokens },
      remove,
      losses,
      digest,
      notes,
    };
  }

  /**
   * Applies a plan made just before with the same token. Refuses a plan that loses anything
   * unless `acceptLosses` is its digest. `--classic-stopped` is the caller's to check.
   */
  async apply(token: string, plan: MigrationPlan, opts: { acceptLosses?: string } = {}, progress: (line: string) => void = () => undefined): Promise<MigrationResult> {
    if (plan.digest && opts.acceptLosses !== plan.digest) {
      throw new Conflict(
        `the migration would lose ${plan.losses.length} thing(s) (listed by the dry run): accept exactly these with --accept-losses ${plan.digest}, or fix them first`,
      );
    }
    const leftovers = plan.groups.some((g) => !g.migrated && !g.problem) || plan.remove.policies.length + plan.revoke.roles.length + plan.revoke.tokens.length > 0;
    if (plan.config === 'none' && !leftovers) throw new BadRequest('no classic RKS deployment here: nothing to migrate');

    // Before anything else, the power of everything made before: the classic's policies first
    // (its group and admin tokens can then create nothing more), then its tokens and roles.
    for (const p of plan.remove.policies) await this.policies.deletePolicy(p, token);
    const rules: SweepRules = {
      firstRun: plan.config === 'classic',
      groups: plan.groups.map((g) => g.name.toLowerCase()),
      roles: new Map(plan.revoke.roles.map((r) => [r.name.toLowerCase(), r.reason])),
      classicPolicies: new Set(plan.remove.policies),
    };
    const record = plan.config === 'classic' ? await this.kv.read<Record<string, unknown>>(kvPath.config, token) : null;
    const classicAdmin = record ? classicAdminLogin(record.data) : undefined;
    if (classicAdmin) rules.classicAdmin = classicAdmin;
    // Tokens, then the roles that made them, then again until nothing is left (revoking a
    // role's tokens by prefix misses a path written in another case).
    let revoked = 0;
    for (let pass = 0; ; pass++) {
      const found = await this.matchingTokens(token, rules, progress);
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
    progress(`revoked ${revoked} token(s) made before the migration; removed ${plan.revoke.roles.length} role(s) and ${plan.remove.policies.length} classic policy(ies)`);
    for (const u of plan.remove.users) await this.users.deleteUserpassUser(USERPASS_PATH, u, token);

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
      await this.normalise(token, g.name);
      result.groupTokens[g.name] = g.migrated ? await this.groups.groupToken(token, g.name) : await this.groups.adopt(token, g.name);
      const kept = g.entries.filter((e) => e.action === 'keep').length;
      progress(`group ${g.name}: ${kept} secret(s), ${g.callback ? 'callback verified' : 'no callback'}, ${g.migrated ? 'already taken over' : 'new group token'}`);
    }
    return result;
  }

  private async planGroup(token: string, g: string, losses: string[], notes: string[]): Promise<ClassicGroup> {
    const migrated = (await this.policies.readPolicy(groupTokenName(g), token)) !== null && (await this.kv.exists(kvPath.groupTokenAccessor(g), token));
    const list = classicSecretList((await this.kv.read<unknown>(kvPath.groupSecrets(g), token))?.data ?? null);
    let entries: PlannedEntry[] = [];
    if ('unreadable' in list) losses.push(`group '${g}': its secret list is unreadable (${list.unreadable}): taken over with no secrets`);
    else entries = await this.judge(token, list.entries);
    for (const e of entries) {
      if (e.action === 'drop') losses.push(`group '${g}': list entry ${quoted(e.entry)} dropped: ${e.reason}`);
    }

    let callback: ClassicGroup['callback'] = null;
    const config = classicRegInfo((await this.kv.read<unknown>(kvPath.groupConfig(g), token))?.data);
    if ('unreadable' in config) {
      losses.push(`group '${g}': its config is unreadable (${config.unreadable}): left as it is, and its nodes cannot register until an administrator sets the group again (PUT /rks/v1/group/${g})`);
    } else if (config.info.callbackURL) {
      const info = config.info;
      callback = { url: info.callbackURL, oauthURL: info.oauthURL, oauthClientID: info.oauthClientID };
      try {
        checkRegInfo(info);
        notes.push(`group '${g}': rks checks the TLS certificate of ${info.callbackURL} and ${info.oauthURL} (the classic never did): trust their CA with --callback-ca-file unless it is a public one`);
      } catch (err) {
        losses.push(`group '${g}': rks refuses its callback settings (${(err as Error).message}): kept, and its nodes cannot register until an administrator sets the group again (PUT /rks/v1/group/${g})`);
      }
    }
    return { name: g, entries, callback, migrated };
  }

  /** What becomes of each entry of a secret list: only rks secret names of secrets that exist stay. */
  private async judge(token: string, entries: unknown[]): Promise<PlannedEntry[]> {
    const seen = new Set<string>();
    const out: PlannedEntry[] = [];
    for (const entry of entries) {
      if (typeof entry !== 'string') out.push({ entry, action: 'drop', reason: 'not a string' });
      else if (!isSecretName(entry)) {
        const lower = entry.toLowerCase();
        const reason = isSecretName(lower) ? `rks names secrets in lower case and would look for '${lower}'` : `not a secret name rks accepts (${FQDN_RULE})`;
        out.push({ entry, action: 'drop', reason });
      } else if (seen.has(entry)) out.push({ entry, action: 'duplicate' });
      else if (!(await this.kv.exists(kvPath.secret(entry), token))) {
        out.push({ entry, action: 'drop', reason: "no such secret (the classic's API only lists secrets it holds: this entry was written straight into Vault)" });
      } else {
        seen.add(entry);
        out.push({ entry, action: 'keep' });
      }
    }
    return out;
  }

  /** Rewrites a group's config and secret list in rks's shape, from the records as they are now. */
  private async normalise(token: string, g: string): Promise<void> {
    const configEntry = await this.kv.read<unknown>(kvPath.groupConfig(g), token);
    const config = classicRegInfo(configEntry?.data);
    if ('info' in config && !isDeepStrictEqual(configEntry?.data, config.info)) {
      await this.kv.write(kvPath.groupConfig(g), config.info, token);
    }
    const listEntry = await this.kv.read<unknown>(kvPath.groupSecrets(g), token);
    const list = classicSecretList(listEntry?.data ?? null);
    const secrets = 'entries' in list ? (await this.judge(token, list.entries)).filter((e) => e.action === 'keep').map((e) => e.entry as string) : [];
    const next = { secrets };
    if (!isDeepStrictEqual(listEntry?.data, next)) await this.kv.write(kvPath.groupSecrets(g), next, token);
  }

  /** Why a role that its name does not condemn must go anyway: it can mint tokens with rks's policies. */
  private async roleReason(role: string, token: string): Promise<string | null> {
    if (role.toLowerCase().startsWith(PREFIX)) return null;
    const info = await this.tokens.readRole(role, token);
    if (!info) return null;
    const reach = [...info.allowed_policies, ...info.allowed_policies_glob].filter((p) => patternReaches(p, PREFIX));
    if (reach.length) return `can mint tokens with rks's policies (${reach.join(', ')})`;
    const [only] = info.allowed_policies;
    if (info.allowed_policies.length === 1 && info.disallowed_policies.length === 1 && info.disallowed_policies[0] === `addtoken-${only}`) {
      return 'a classic node role (of a group deleted since)';
    }
    return null;
  }

  /** Every token Vault holds that the rules condemn, found by looking at each. */
  private async matchingTokens(token: string, rules: SweepRules, progress: (line: string) => void): Promise<PlannedToken[]> {
    const accessors = await this.tokens.listAccessors(token);
    progress(`looking at ${accessors.length} token(s)`);
    const infos = await mapLimited(accessors, LOOKUPS, (a) => this.tokens.lookupAccessor(a, token));
    const out: PlannedToken[] = [];
    for (const t of infos) {
      const reason = t && tokenReason(t, rules);
      if (t && reason) out.push({ accessor: t.accessor, path: t.path, policies: t.policies, reason });
    }
    return out.sort((a, b) => (a.path === b.path ? (a.accessor < b.accessor ? -1 : 1) : a.path < b.path ? -1 : 1));
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

/** The classic's admin login, as its config record holds it (lower case, as Vault compares them). */
function classicAdminLogin(record: Record<string, unknown>): string | undefined {
  const f = goField(record, 'AdminLogin');
  return f && 'value' in f && typeof f.value === 'string' && f.value ? f.value.toLowerCase() : undefined;
}
