import { BadRequest } from './errors';

const LABEL = /^[a-z0-9_-]{1,63}$/;

/**
 * Longest secret name: Vault's file storage turns the last path segment into a file name,
 * which it lengthens by encryption, and refuses names of more than 104 characters.
 */
export const FQDN_MAX = 100;

export const FQDN_RULE =
  `a DNS name of at least two labels (letters, digits, '-', '_'; at most 63 characters a label, ${FQDN_MAX} in all), optionally starting with '*.'`;

/**
 * Checks a secret name and returns its canonical (lower-case) form. The name becomes part
 * of Vault paths and ACL policies, where `*` and `+` are globs and a one-label name would
 * land on rks's own bookkeeping, so anything but a plain DNS name is refused.
 */
export function parseFqdn(input: string): string {
  const name = input.toLowerCase();
  const bare = name.startsWith('*.') ? name.slice(2) : name;
  const labels = bare.split('.');
  if (name.length > FQDN_MAX || labels.length < 2 || !labels.every((l) => LABEL.test(l))) {
    throw new BadRequest(`invalid secret name: must be ${FQDN_RULE}`);
  }
  return name;
}

/**
 * Whether a name is a secret name exactly as rks stores it (the API's rule, already in its
 * canonical form): what may become part of a Vault path or policy.
 */
export function isSecretName(name: unknown): boolean {
  try {
    return typeof name === 'string' && parseFqdn(name) === name;
  } catch {
    return false;
  }
}

export const NAME_PATTERN = /^[a-zA-Z0-9-]{1,64}$/;
export const NAME_RULE = "1 to 64 letters, digits or '-'";

/** Group names and node ids: letters, digits and '-', compared case-insensitively. */
export function parseName(kind: 'group name' | 'node id' | 'issuer name', input: string): string {
  if (!NAME_PATTERN.test(input)) {
    throw new BadRequest(`invalid ${kind}: use ${NAME_RULE}`);
  }
  return input.toLowerCase();
}

/** Whether a group name or node id is one as rks stores it (the API's rule, lower-case). */
export function isName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name) && name === name.toLowerCase();
}

/** A name quoted for a message: bounded, with its control characters escaped. */
export function quoted(name: unknown): string {
  const s = typeof name === 'string' ? name : String(name);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

/** Vault's own rule for userpass names, within 64 characters. */
export const LOGIN_PATTERN = /^[a-zA-Z0-9_]([a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9_])?$/;
export const LOGIN_RULE = "1 to 64 letters, digits, '_', '-' or '.', starting and ending with a letter, digit or '_'";

/** Administrator logins (Vault userpass names), compared case-insensitively as Vault does. */
export function parseLogin(input: string): string {
  if (!LOGIN_PATTERN.test(input)) {
    throw new BadRequest(`invalid login: use ${LOGIN_RULE}`);
  }
  return input.toLowerCase();
}
