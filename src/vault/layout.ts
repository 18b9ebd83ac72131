/**
 * Every Vault object rks owns, by name. Group names and node ids are `[a-zA-Z0-9-]`,
 * so `_` separates the parts unambiguously: `rks_node_edge_1` can only be node `1` of
 * group `edge`, and no group name can reach a policy rks or Vault relies on.
 * Vault lower-cases policy names, so names are lower-cased here before they are joined.
 */
import { Conflict } from '../errors';
import { FQDN_RULE, NAME_RULE, isName, isSecretName, quoted } from '../names';

export const KV_MOUNT = 'rks';
export const USERPASS_PATH = 'userpass';
export const ADMIN_POLICY = 'rks_admin';
/**
 * Vault's user lockout on the userpass mount, set explicitly by init: the threshold leaves
 * room for several rks instances, each passing at most --login-failure-limit failures of a
 * login name to Vault per counter-reset period.
 */
export const USERPASS_LOCKOUT = { threshold: 20, durationSeconds: 900, counterResetSeconds: 900 };
/** Vault's PKI engine holding rks's CA. */
export const PKI_MOUNT = 'rks-pki';
/** PKI roles: `server` (server and client auth) for rks itself and /ca/sign, `client` for client auth only. */
export const PKI_SERVER_ROLE = 'server';
export const PKI_CLIENT_ROLE = 'client';
export const PREFIX = 'rks_';
/**
 * rks's own identity: an AppRole at its own auth mount, which `/rks/v1/admin/login` never
 * touches, with the policy of the work rks does on no caller's behalf.
 */
export const SERVICE_AUTH_PATH = 'rks-service';
export const SERVICE_ROLE = 'rks';
/** Its role id is not a secret; the secret id is (see identity.ts). */
export const SERVICE_ROLE_ID = 'rks-service';
export const SERVICE_POLICY = `${PREFIX}service`;
/** Where layouts before 6 granted rks's identity each managed secret by name: removed by init. */
export const LEGACY_MANAGED_POLICY = `${PREFIX}managed`;
/** PKI role of one managed secret: it can sign only that secret's names. */
export const managedRoleName = (id: string) => `managed-${id}`;
/** Seconds a service token lives; rks logs in again at half of it. */
export const SERVICE_TOKEN_PERIOD = 3600;
/** The layout init writes; older layouts are brought up to date by running init again. */
export const LAYOUT = 6;

/**
 * Every name that becomes part of a Vault path or policy passes here, whoever the caller and
 * wherever the name came from (a request, or a list read back from Vault): in a policy `*` and
 * `+` are globs, and a quote or a newline would write policy text.
 */
function secretPart(fqdn: string): string {
  if (!isSecretName(fqdn)) throw new Conflict(`refusing to put secret name ${quoted(fqdn)} into a Vault path or policy: a secret name is ${FQDN_RULE}, in lower case`);
  return fqdn;
}

export function namePart(kind: 'group name' | 'node id', name: string): string {
  if (!isName(name)) throw new Conflict(`refusing to put ${kind} ${quoted(name)} into a Vault path or policy: use ${NAME_RULE}, in lower case`);
  return name;
}

function issuerPart(name: string): string {
  if (!isName(name)) throw new Conflict(`refusing to put issuer name ${quoted(name)} into a Vault path: use ${NAME_RULE}, in lower case`);
  return name;
}

/** A time in the schedule's index: whole seconds, before the year 2286 (its hourly folder stays in nine digits). */
function dueTime(at: number): number {
  if (!Number.isSafeInteger(at) || at < 0 || at >= 1e10) throw new Conflict(`refusing to schedule a renewal at ${at}`);
  return at;
}

/** KV v2 paths, relative to the mount (`rks/data/<path>`). */
export const kvPath = {
  config: 'config',
  secret: (fqdn: string) => secretPart(fqdn),
  group: (group: string) => `groups/${namePart('group name', group)}`,
  groupConfig: (group: string) => `groups/${namePart('group name', group)}/config`,
  groupToken: (group: string) => `groups/${namePart('group name', group)}/grouptoken`,
  /** The group token's accessor alone: what renewal needs, without the token. */
  groupTokenAccessor: (group: string) => `groups/${namePart('group name', group)}/grouptoken-accessor`,
  /** A group's secrets as one list: the classic's layout and rks's before layout 4, read to take them over. */
  groupSecrets: (group: string) => `groups/${namePart('group name', group)}/secret-list`,
  /**
   * What a group's nodes read: one copy of each associated secret, whose presence is the
   * association. Its node policy grants the folder, so no policy grows with the group.
   */
  groupCopy: (group: string, fqdn: string) => `groups/${namePart('group name', group)}/secrets/${secretPart(fqdn)}`,
  groupCopies: (group: string) => `groups/${namePart('group name', group)}/secrets/`,
  /** A group's copy of a managed secret: apart, so that rks's identity may update these and no other. */
  groupManagedCopy: (group: string, fqdn: string) => `groups/${namePart('group name', group)}/managed/${secretPart(fqdn)}`,
  groupManagedCopies: (group: string) => `groups/${namePart('group name', group)}/managed/`,
  /** Written on every association and dissociation: its version names the group's list (the nodes' ETag). */
  groupSerial: (group: string) => `groups/${namePart('group name', group)}/serial`,
  /** The nodes admitted to a group, one entry each (bounded by --max-nodes-per-group). */
  groupNodes: (group: string) => `groups/${namePart('group name', group)}/nodes/`,
  groupNode: (group: string, nodeId: string) => `groups/${namePart('group name', group)}/nodes/${namePart('node id', nodeId)}`,
  /** Nodes an administrator revoked: refused at registration until allowed back, one entry each. */
  groupRevokedNodes: (group: string) => `groups/${namePart('group name', group)}/revoked/`,
  groupRevokedNode: (group: string, nodeId: string) => `groups/${namePart('group name', group)}/revoked/${namePart('node id', nodeId)}`,
  groups: 'groups/',
  /** Reverse index: the groups a secret is associated with. */
  secretGroups: (fqdn: string) => `index/secret-groups/${secretPart(fqdn)}`,
  /** The inventory's index: every secret's facts and groups in a fixed number of shards (see secrets/catalog.ts). */
  catalogShard: (shard: string) => `index/catalog/${shard}`,
  catalogShards: 'index/catalog/',
  /** Written on every change of the catalog: its version tells a cached listing it is out of date. */
  catalogSerial: 'index/catalog-serial',
  /** Where the expiry index was before the catalog (64 shards): removed by init. */
  expiryShards: 'index/expiry/',
  /** Where layouts before 6 kept every managed secret's schedule in one entry: moved by init. */
  legacyManagedSchedule: 'index/managed',
  /**
   * A managed secret's certificate and key (its versions), which rks's identity renews; the
   * secret itself (`<fqdn>`) then holds only what the administrator asked for. Apart from the
   * pushed secrets, so that rks's identity is granted this folder and nothing it has no
   * business writing, with a policy of constant size.
   */
  managedSecret: (fqdn: string) => `managed/secrets/${secretPart(fqdn)}`,
  /** What a managed secret is renewed to (the stub's spec), which only the administrator's calls write. */
  managedSpec: (fqdn: string) => `managed/spec/${secretPart(fqdn)}`,
  /** A managed secret's renewal state: when it is due, failures, the claim of an instance renewing it. */
  managedState: (fqdn: string) => `managed/state/${secretPart(fqdn)}`,
  /** The schedule's index: one empty entry per managed secret, named by when it is due, in hourly folders. */
  managedDue: 'managed/due/',
  managedDueHour: (hour: number) => `managed/due/${hour}/`,
  managedDueMark: (at: number, fqdn: string) => `managed/due/${Math.floor(dueTime(at) / 3600)}/${at}-${secretPart(fqdn)}`,
  /** ACME issuers: directory, trust, and the account (its key included). */
  acmeIssuer: (name: string) => `acme/issuers/${issuerPart(name)}`,
  acmeIssuers: 'acme/issuers/',
  /** An issuer's pace of new orders (see acme/pacing.ts), shared by every instance. */
  acmePacing: (name: string) => `acme/pacing/${issuerPart(name)}`,
  /** HTTP-01 key authorisations of orders in progress, which edges answer with. */
  acmeChallenge: (token: string) => `acme/challenges/${token}`,
  acmeChallenges: 'acme/challenges/',
  /** Names the challenges' list: rewritten with each change (not a token: too short for one). */
  acmeChallengesSerial: 'acme/challenges/_serial',
  /** Where secrets live: every name at the top of the mount that is not rks's own. */
  secrets: '',
};

/** The groups of a listing of `groups/`: rks's own names only (a classic RKS may have left others). */
export const groupsIn = (keys: string[]): string[] => keys.filter((k) => k.endsWith('/')).map((k) => k.slice(0, -1)).filter(isName);

/**
 * Whether a pattern (a token role's allowed policy, or a policy's path, where `*` and `+` are
 * globs) can name something that starts with `prefix`.
 */
export function patternReaches(pattern: string, prefix: string): boolean {
  const p = pattern.toLowerCase();
  const star = p.search(/[*+]/);
  if (star < 0) return p.startsWith(prefix);
  const literal = p.slice(0, star);
  return prefix.startsWith(literal) || literal.startsWith(prefix);
}

export const kvData = (path: string) => `${KV_MOUNT}/data/${path}`;
export const kvMetadata = (path: string) => `${KV_MOUNT}/metadata/${path}`;

/** Policy and role of a group's token (two namespaces in Vault, one name). */
export const groupTokenName = (group: string) => `${PREFIX}grouptoken_${namePart('group name', group)}`;
export const nodePolicyName = (group: string) => `${PREFIX}node_${namePart('group name', group)}`;
/** What every node role of a group starts with. */
export const nodeRolePrefix = (group: string) => `${PREFIX}node_${namePart('group name', group)}_`;
export const nodeRoleName = (group: string, nodeId: string) => `${nodeRolePrefix(group)}${namePart('node id', nodeId)}`;

/**
 * Whose token a token is, from the path Vault made it at (its role), not from its metadata,
 * which whoever creates a token may set: a group token of `group`, or a node token of `nodeId`.
 */
export function tokenOrigin(path: string | undefined): { group: string; nodeId?: string } | null {
  const m = /^auth\/token\/create\/rks_(grouptoken|node)_([a-z0-9-]{1,64})(?:_([a-z0-9-]{1,64}))?$/.exec(path ?? '');
  if (!m) return null;
  if (m[1] === 'grouptoken') return m[3] === undefined ? { group: m[2]! } : null;
  return m[3] === undefined ? null : { group: m[2]!, nodeId: m[3] };
}
