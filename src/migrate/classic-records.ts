import { quoted } from '../names';
import type { GroupRegInfo } from '../records/groups';

/**
 * The records of a classic RKS, read the way the classic itself reads them. It stores its Go
 * structs through mapstructure, so the keys are the Go field names (`Secrets`, `CallbackURL`,
 * …), not the lower-case names of its API; and it reads them back through mapstructure, which
 * takes the exact field name first and otherwise any key equal to it but for case.
 */

type Found = { value: unknown } | { ambiguous: string[] } | null;

/** One field of a classic record, as the classic's decoder finds it. */
export function goField(record: Record<string, unknown>, name: string): Found {
  if (Object.prototype.hasOwnProperty.call(record, name)) return { value: record[name] };
  const keys = Object.keys(record).filter((k) => k.toLowerCase() === name.toLowerCase());
  if (keys.length === 0) return null;
  // More than one: the classic took whichever its map iteration met first.
  if (keys.length > 1) return { ambiguous: keys };
  return { value: record[keys[0]!] };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A group's secret list (`groups/<g>/secret-list`): its entries as stored, or why none can be read. */
export function classicSecretList(record: unknown): { entries: unknown[] } | { unreadable: string } {
  if (record === null || record === undefined) return { entries: [] };
  if (!isRecord(record)) return { unreadable: 'the record is not an object' };
  const f = goField(record, 'Secrets');
  if (f === null) return { entries: [] };
  if ('ambiguous' in f) return { unreadable: `it holds the list under several keys (${f.ambiguous.map(quoted).join(', ')})` };
  if (f.value === null) return { entries: [] };
  if (!Array.isArray(f.value)) return { unreadable: 'its Secrets field is not a list' };
  return { entries: f.value };
}

const CONFIG_FIELDS: [keyof GroupRegInfo, string][] = [
  ['callbackURL', 'CallbackURL'],
  ['oauthURL', 'OauthURL'],
  ['oauthClientID', 'OauthClientID'],
  ['oauthClientSecret', 'OauthClientSecret'],
];

/** A group's config (`groups/<g>/config`) in rks's shape, or why the classic could not have read it either. */
export function classicRegInfo(record: unknown): { info: GroupRegInfo } | { unreadable: string } {
  if (!isRecord(record)) return { unreadable: 'the record is not an object' };
  const info: GroupRegInfo = { callbackURL: '', oauthURL: '', oauthClientID: '', oauthClientSecret: '' };
  for (const [field, goName] of CONFIG_FIELDS) {
    const f = goField(record, goName);
    if (f === null) continue;
    if ('ambiguous' in f) return { unreadable: `it holds ${goName} under several keys (${f.ambiguous.map(quoted).join(', ')})` };
    if (f.value === null) continue;
    if (typeof f.value !== 'string') return { unreadable: `its ${goName} is not a string` };
    info[field] = f.value;
  }
  return { info };
}

