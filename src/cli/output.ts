import fs from 'node:fs';
import type { Conn } from './connection';
import { CliError } from './http';

/** Prints `value` as JSON with --json, else the human form. */
export function out(o: Conn, value: unknown, human?: string): void {
  if (o.json) process.stdout.write(`${JSON.stringify(value ?? { ok: true }, null, 2)}\n`);
  else if (human !== undefined) process.stdout.write(human.endsWith('\n') || human === '' ? human : `${human}\n`);
}

/** Columns padded to their widest cell. */
export function table(head: string[], rows: string[][]): string {
  if (rows.length === 0) return '(none)';
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

export const SAVE_HELP = 'write the token to this file (mode 0600, replaced at once: a running rks edge reading it never sees half a token) instead of printing it';

/**
 * Writes a token or key readable by its owner only: a new file beside it, then a rename, so a
 * reader (rks edge --group-token-file) sees the old content or the new, never a partial one.
 */
export function saveSecretFile(file: string, content: string, what: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, `${content}\n`, { mode: 0o600 });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new CliError(`--save: cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 2);
  }
  process.stderr.write(`${what} saved to ${file} (mode 0600)\n`);
}

export function printToken(o: Conn & { save?: string }, res: { groupToken: string }): void {
  if (o.save) {
    saveSecretFile(o.save, res.groupToken, 'group token');
    if (o.json) out(o, { saved: o.save });
  } else out(o, res, res.groupToken);
}

/** A file the command sends (a certificate, a CA bundle), or a usage error naming it. */
export function readInput(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    throw new CliError(`cannot read ${what} ${file}`, 2);
  }
}
