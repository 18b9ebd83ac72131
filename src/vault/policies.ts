/**
 * The policy texts rks writes to Vault: what each kind of token may do there, and nothing more.
 * Every name in them passed the layout's checks (a glob or a quote in a name would write policy).
 */
import { KV_MOUNT, PKI_CLIENT_ROLE, PKI_MOUNT, PKI_SERVER_ROLE, PREFIX, kvData, kvMetadata, kvPath, namePart, nodeRolePrefix } from './layout';

/**
 * What a group token may do: look itself up, renew itself, and create node tokens from the
 * roles rks made for the nodes it admitted. Nothing else: no config, no secret, no role.
 */
export const groupTokenPolicy = (group: string) => `# rks group token of '${namePart('group name', group)}'
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/create/${nodeRolePrefix(group)}*" {
  capabilities = ["update"]
  allowed_parameters = {
    "meta" = []
    "display_name" = []
  }
}
`;

/**
 * What a node token may do: look itself up, renew itself, and read its group's copies of the
 * secrets associated with the group, their names and the list's version. The same few lines
 * at any group size: Vault builds a request's ACL from its policies on every request.
 */
export const nodePolicy = (group: string) => `# rks node token of '${namePart('group name', group)}'
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "${kvData(kvPath.groupCopies(group))}*" {
  capabilities = ["read"]
}
path "${kvMetadata(kvPath.groupCopies(group))}" {
  capabilities = ["list"]
}
path "${kvData(kvPath.groupManagedCopies(group))}*" {
  capabilities = ["read"]
}
path "${kvMetadata(kvPath.groupManagedCopies(group))}" {
  capabilities = ["list"]
}
path "${kvData(kvPath.groupSerial(group))}" {
  capabilities = ["read"]
}
`;

/**
 * The admin policy: what administration needs, nothing more, and nothing that reaches beyond
 * rks straight against Vault. No policy text and no token role (a group's policies and its
 * token's role are written by rks's own identity, from names it checked); group tokens from
 * those roles, with nothing of the caller's choosing but metadata; no token of anyone else's
 * looked up, renewed or revoked.
 */
export const adminPolicy = `# rks administrator
path "${KV_MOUNT}/data/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
path "${KV_MOUNT}/metadata/*" {
  capabilities = ["read", "delete", "list"]
}
# The layout record is init's (the root token's): an administrator moving it would stop every
# instance's writes (see layout-watch.ts).
path "${KV_MOUNT}/data/${kvPath.config}" {
  capabilities = ["read"]
}
path "${KV_MOUNT}/metadata/${kvPath.config}" {
  capabilities = ["read"]
}
path "${PKI_MOUNT}/roles/managed-*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "${PKI_MOUNT}/sign/managed-*" {
  capabilities = ["update"]
}
path "auth/token/roles" {
  capabilities = ["list"]
}
path "auth/token/roles/${PREFIX}grouptoken_*" {
  capabilities = ["read", "delete"]
}
path "auth/token/roles/${PREFIX}node_*" {
  capabilities = ["read", "delete"]
}
path "auth/token/create/${PREFIX}grouptoken_*" {
  capabilities = ["update"]
  allowed_parameters = {
    "meta" = []
    "display_name" = []
  }
}
path "sys/leases/revoke-prefix/auth/token/create/${PREFIX}*" {
  capabilities = ["update", "sudo"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "${PKI_MOUNT}/sign/*" {
  capabilities = ["update"]
}
path "${PKI_MOUNT}/cert/ca" {
  capabilities = ["read"]
}
`;

/**
 * Token roles named `rks_<kind>_*` that the holder may write only as rks does: minting policies
 * of that kind alone, renewable service tokens without the default policy, orphans or not.
 */
const heldRoles = (kind: 'grouptoken' | 'node', capabilities: string[], orphan: boolean) => `path "auth/token/roles/${PREFIX}${kind}_*" {
  capabilities = [${capabilities.map((c) => `"${c}"`).join(', ')}]${kind === 'node' ? '\n  # Vault matches a string whole against the glob, then splits it on commas: no comma at all.' : ''}
  denied_parameters = {
    "allowed_policies" = ["*,*"]
  }
  allowed_parameters = {
    "allowed_policies" = ["${PREFIX}${kind}_*"]
    "orphan" = [${orphan}]
    "renewable" = [true]
    "token_no_default_policy" = [true]
    "token_period" = []
    "token_type" = ["service"]
  }
}
`;

/**
 * rks's own work: registrations, group-token renewal (by accessor: it never reads a group
 * token), node pruning, its certificate and /ca/sign, and the text of each group's two policies
 * (built from names rks checked, after the administrator's own write). The node roles it may
 * write are held to node policies, and it can create no token at all.
 */
export const servicePolicy = `# rks service identity
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
# The layout Vault holds (a newer rks's init moves it on: see layout-watch.ts).
path "${KV_MOUNT}/data/${kvPath.config}" {
  capabilities = ["read"]
}
path "${KV_MOUNT}/metadata/groups/" {
  capabilities = ["list"]
}
path "${KV_MOUNT}/data/groups/+/config" {
  capabilities = ["read"]
}
path "${KV_MOUNT}/data/groups/+/serial" {
  capabilities = ["read", "update"]
}
path "${KV_MOUNT}/data/groups/+/grouptoken-accessor" {
  capabilities = ["read"]
}
path "${KV_MOUNT}/data/groups/+/secret-list" {
  capabilities = ["read"]
}
path "${KV_MOUNT}/data/groups/+/revoked/*" {
  capabilities = ["read"]
}
path "${KV_MOUNT}/data/groups/+/nodes/*" {
  capabilities = ["create", "read", "update"]
}
path "${KV_MOUNT}/metadata/groups/+/nodes/*" {
  capabilities = ["list", "delete"]
}
path "sys/policies/acl/${PREFIX}grouptoken_*" {
  capabilities = ["create", "update", "delete"]
}
path "sys/policies/acl/${PREFIX}node_*" {
  capabilities = ["create", "update", "delete"]
}
${heldRoles('grouptoken', ['create', 'update'], true)}path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}
${heldRoles('node', ['create', 'read', 'update', 'delete'], false)}path "sys/leases/revoke-prefix/auth/token/create/${PREFIX}node_*" {
  capabilities = ["update", "sudo"]
}
path "auth/token/renew-accessor" {
  capabilities = ["update"]
}
path "${PKI_MOUNT}/sign/${PKI_SERVER_ROLE}" {
  capabilities = ["update"]
}
path "${PKI_MOUNT}/sign/${PKI_CLIENT_ROLE}" {
  capabilities = ["update"]
}
path "${KV_MOUNT}/data/index/catalog/*" {
  capabilities = ["create", "read", "update"]
}
path "${KV_MOUNT}/metadata/index/catalog/" {
  capabilities = ["list"]
}
path "${KV_MOUNT}/data/index/catalog-serial" {
  capabilities = ["create", "read", "update"]
}
path "${PKI_MOUNT}/sign/managed-*" {
  capabilities = ["update"]
}
path "${KV_MOUNT}/data/managed/secrets/*" {
  capabilities = ["create", "read", "update"]
}
# A certificate stored as its secret was deleted goes too.
path "${KV_MOUNT}/metadata/managed/secrets/*" {
  capabilities = ["delete"]
}
path "${KV_MOUNT}/data/managed/spec/*" {
  capabilities = ["read"]
}
path "${KV_MOUNT}/data/managed/state/*" {
  capabilities = ["create", "read", "update"]
}
path "${KV_MOUNT}/metadata/managed/state/*" {
  capabilities = ["delete"]
}
path "${KV_MOUNT}/data/managed/due/*" {
  capabilities = ["create", "update"]
}
path "${KV_MOUNT}/metadata/managed/due/*" {
  capabilities = ["list", "delete"]
}
path "${KV_MOUNT}/data/index/secret-groups/*" {
  capabilities = ["read"]
}
# Only copies that exist: making one is an association, an administrator's act.
path "${KV_MOUNT}/data/groups/+/managed/*" {
  capabilities = ["read", "update"]
}
path "${KV_MOUNT}/data/acme/issuers/*" {
  capabilities = ["read"]
}
path "${KV_MOUNT}/data/acme/pacing/*" {
  capabilities = ["create", "read", "update"]
}
path "${KV_MOUNT}/data/acme/challenges/*" {
  capabilities = ["create", "read", "update"]
}
path "${KV_MOUNT}/metadata/acme/challenges/*" {
  capabilities = ["list", "delete"]
}
`;
