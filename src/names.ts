import { BadRequest } from './errors';

const LABEL = /^[a-z0-9_-]{1,63}$/;

export const FQDN_RULE =
  "a DNS name of at least two labels (letters, digits, '-', '_'; at most 63 characters a label, 253 in all), optionally starting with '*.'";

/**
 * Checks a secret name and returns its canonical (lower-case) form. The name becomes part
 * of Vault paths and ACL policies, where `*` and `+` are globs and a one-label name would
 * land on rks's own bookkeeping, so anything but a plain DNS name is refused.
 */
export function parseFqdn(input: string): string {
  const name = input.toLowerCase();
  const bare = name.startsWith('*.') ? name.slice(2) : name;
  const labels = bare.split('.');
  if (name.length > 253 || labels.length < 2 || !labels.every((l) => LABEL.test(l))) {
    throw new BadRequest(`invalid secret name: must be ${FQDN_RULE}`);
  }
  return name;
}

export const NAME_PATTERN = /^[a-zA-Z0-9-]{1,64}$/;

/** Group names and node ids: letters, digits and '-', compared case-insensitively. */
export function parseName(kind: 'group name' | 'node id', input: string): string {
  if (!NAME_PATTERN.test(input)) {
    throw new BadRequest(`invalid ${kind}: use 1 to 64 letters, digits or '-'`);
  }
  return input.toLowerCase();
}
