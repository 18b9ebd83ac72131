import { BadRequest, Conflict } from '../errors';
import type { GroupService } from '../groups/service';
import { type InitService, isClassicRecord } from '../init/service';
import { NAME_PATTERN } from '../names';
import { storedFacts } from '../secrets/facts';
import type { SecretData } from '../secrets/service';
import { validateTlsMaterial } from '../secrets/tls';
import { PREFIX, groupTokenName, kvPath } from '../vault/layout';
import type { KvStore, PolicyStore, TokenStore } from '../vault/stores';

/** Names Vault itself relies on: never deleted, whatever a classic group was called. */
const VAULT_POLICIES = new Set(['default', 'root', 'response-wrapping', 'control-group']);

export interface ClassicGroup {
  name: string;
  secrets: string[];
  /** The classic's node roles of this group (`<group>-<nodeId>`). */
  nodeRoles: string[];
  /** Already taken over by an earlier run (rks's group token exists). */
  migrated: boolean;
  /** Why rks cannot take it over (its name), if it cannot. */
  problem?: string;
}

export interface ClassicSecret {
  name: string;
  /** What rks would refuse in it (placeholder, key mismatch, expired…): reported, kept as is. */
  problem?: string;
}

export interface MigrationPlan {
  /** The config record: the classic's, rks's (an earlier run got that far), or none. */
  config: 'classic' | 'rks' | 'none';
  groups: ClassicGroup[];
  secrets: ClassicSecret[];
  /** The classic's policies and token roles that the migration removes. */
  remove: { policies: string[]; roles: string[] };
}

export interface MigrationResult {
  /** The new group token of each group (re-read, not re-issued, for groups an earlier run took over). */
  groupTokens: Record<string, string>;
  skipped: string[];
}

interface PolicyReader extends PolicyStore {
  listPolicies(token: string): Promise<string[]>;
}

interface RoleReader extends TokenStore {
  readRole(name: string, token: string): Promise<{ allowed_policies: string[] } | null>;
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

/**
 * Takes a Vault over from Orange's remote-key-server (the classic RKS), with the Vault root
 * token. Plans from reads alone; applies in steps that can each run again, so a migration that
 * stopped half-way is finished by running it again. Secrets and associations stay where they
 * are (the KV layout is the same); the classic's config record (which holds its admin password
 * and TLS key paths) is destroyed; rks's init then runs; each group gets rks's policies and a new
 * group token; the classic's tokens, roles and policies go (its glob policies are the isolation
 * hole rks closes), so classic node tokens stop working at once.
 */
export class ClassicMigration {
  constructor(
    private readonly kv: KvStore,
    private readonly policies: PolicyReader,
    private readonly tokens: RoleReader,
    private readonly groups: GroupService,
    private readonly init: InitService,
  ) {}

  async plan(token: string): Promise<MigrationPlan> {
    const record = await this.kv.read<object>(kvPath.config, token);
    const config = !record ? 'none' : isClassicRecord(record.data) ? 'classic' : 'rks';
    const policyNames = await this.policies.listPolicies(token);
    const roleNames = await this.tokens.listRoles(token);
    const remove = { policies: [] as string[], roles: [] as string[] };

    const groupNames = (await this.kv.list(kvPath.groups, token)).filter((k) => k.endsWith('/')).map((k) => k.slice(0, -1));
    const groups: ClassicGroup[] = [];
    for (const g of groupNames.sort()) {
      if (!(await this.kv.exists(kvPath.groupConfig(g), token))) continue;
      const secrets = (await this.kv.read<{ secrets: string[] }>(kvPath.groupSecrets(g), token))?.data.secrets ?? [];
      const nodeRoles: string[] = [];
      for (const r of roleNames.filter((r) => r.startsWith(`${g}-`) && !r.startsWith(PREFIX))) {
        const role = await this.tokens.readRole(r, token);
        if (role && role.allowed_policies.length === 1 && role.allowed_policies[0] === g) nodeRoles.push(r);
      }
      const groupTokenRole = roleNames.find((r) => r.toLowerCase() === `addtoken-${g.toLowerCase()}`);
      if (groupTokenRole) remove.roles.push(groupTokenRole);
      remove.roles.push(...nodeRoles);
      for (const p of [`addtoken-${g.toLowerCase()}`, g.toLowerCase()]) {
        if (!policyNames.includes(p) || VAULT_POLICIES.has(p)) continue;
        const text = (await this.policies.readPolicy(p, token)) ?? '';
        if (p === g.toLowerCase() ? isClassicNodePolicy(text) : isClassicGroupTokenPolicy(text, g)) remove.policies.push(p);
      }
      const migrated = (await this.policies.readPolicy(groupTokenName(g), token)) !== null && (await this.kv.exists(kvPath.groupTokenAccessor(g), token));
      const problem = NAME_PATTERN.test(g) && g === g.toLowerCase() ? undefined : `rks group names are 1 to 64 lower-case letters, digits or '-': '${g}' is left to the classic's tools`;
      groups.push({ name: g, secrets, nodeRoles, migrated, ...(problem ? { problem } : {}) });
    }
    if (policyNames.includes('admin') && isClassicAdminPolicy((await this.policies.readPolicy('admin', token)) ?? '')) remove.policies.push('admin');

    const secrets: ClassicSecret[] = [];
    for (const name of (await this.kv.list(kvPath.secrets, token)).filter((k) => !k.endsWith('/') && k.includes('.')).sort()) {
      const entry = await this.kv.read<SecretData>(kvPath.secret(name), token);
      if (!entry) continue;
      secrets.push({ name, ...this.check(name, entry.data) });
    }
    return { config, groups, secrets, remove };
  }

  /** Applies a plan (made just before, with the same token). `--classic-stopped` is the caller's to check. */
  async apply(token: string, plan: MigrationPlan, progress: (line: string) => void = () => undefined): Promise<MigrationResult> {
    // No config record but classic groups or policies: a run that stopped right after destroying it.
    const leftovers = plan.groups.some((g) => !g.migrated) || plan.remove.policies.length + plan.remove.roles.length > 0;
    if (plan.config === 'none' && !leftovers) throw new BadRequest('no classic RKS deployment here: nothing to migrate');
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

    const result: MigrationResult = { groupTokens: {}, skipped: [] };
    for (const g of plan.groups) {
      if (g.problem) {
        result.skipped.push(`${g.name}: ${g.problem}`);
        continue;
      }
      // The classic's tokens first: its group tokens, and their children, the node tokens.
      await this.tokens.revokeRoleTokens(`addToken-${g.name}`, token);
      for (const r of g.nodeRoles) {
        await this.tokens.revokeRoleTokens(r, token);
        await this.tokens.deleteRole(r, token);
      }
      result.groupTokens[g.name] = g.migrated ? await this.groups.groupToken(token, g.name) : await this.groups.adopt(token, g.name);
      progress(`group ${g.name}: ${g.secrets.length} secret(s), ${g.nodeRoles.length} classic node role(s) removed, ${g.migrated ? 'already taken over' : 'new group token'}`);
    }
    for (const r of plan.remove.roles.filter((r) => r.toLowerCase().startsWith('addtoken-'))) await this.tokens.deleteRole(r, token);
    for (const p of plan.remove.policies) await this.policies.deletePolicy(p, token);
    progress(`classic roles and policies removed: ${[...plan.remove.roles, ...plan.remove.policies].join(', ') || 'none left'}`);
    return result;
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
