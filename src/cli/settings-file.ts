import fs from 'node:fs';
import { Command, Option } from 'commander';
import { UsageError } from '../settings';
import { envFlag } from './options';

/** Where a setting's value came from, strongest first. */
export type SettingSource = 'flag' | 'environment' | 'file' | 'default' | 'unset';

/** A setting as `--print-config` shows it. */
export interface Setting {
  variable: string;
  value?: string;
  source: SettingSource;
}

const LINE = /^\s*(?:export\s+)?([A-Z][A-Z0-9_]*)\s*=\s*(.*?)\s*$/;

/** One line of a settings file. */
export interface FileSetting {
  value: string;
  line: number;
}

/**
 * A settings file: `RKS_*=value` lines, the same names and values as the environment (and as
 * systemd's `EnvironmentFile=` reads them), `#` comments, blank lines, values optionally quoted.
 */
export function readSettingsFile(file: string): Map<string, FileSetting> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--config ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const out = new Map<string, FileSetting>();
  text.split(/\r?\n/).forEach((raw, i) => {
    if (/^\s*(#|$)/.test(raw)) return;
    const m = LINE.exec(raw);
    if (!m) throw new UsageError(`--config ${file}, line ${i + 1}: not NAME=value`);
    const value = m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
    out.set(m[1]!, { value, line: i + 1 });
  });
  return out;
}

/** What a settings file set: each variable's line, to name where a value came from. */
export interface AppliedFile {
  file: string;
  lines: Map<string, number>;
}

/**
 * Applies `--config FILE` to a parsed command, under the flags and the environment: a variable
 * the environment lacks is taken from the file, for the option it sets (and for the
 * environment's own readers: boolean switches, VAULT_ADDR). Unknown names are refused, so a typo
 * is not a setting silently ignored. `switches` are the command's variables that no option
 * carries (read from the environment when the command runs). Answers what the file set.
 */
export function applySettingsFile(cmd: Command, file: string, switches: string[]): AppliedFile {
  const settings = readSettingsFile(file);
  const options = new Map(cmd.options.filter((o) => o.envVar).map((o) => [o.envVar!, o] as const));
  const applied: AppliedFile = { file, lines: new Map() };
  for (const [variable, { value, line }] of settings) {
    const where = `--config ${file}, line ${line}`;
    const option = options.get(variable);
    if (!option && !switches.includes(variable)) {
      const near = closest(variable, [...options.keys(), ...switches]);
      throw new UsageError(`${where}: ${variable} is no setting of rks ${cmd.name()} (${near ? `did you mean ${near}? ` : ''}see rks ${cmd.name()} --help)`);
    }
    if (process.env[variable] !== undefined) continue; // the environment wins
    if (!option) {
      try {
        envFlag(variable, value);
      } catch (err) {
        throw new UsageError(`${where}: ${(err as Error).message}`);
      }
    }
    process.env[variable] = value;
    applied.lines.set(variable, line);
    if (!option) continue;
    const attribute = option.attributeName();
    const source = cmd.getOptionValueSource(attribute);
    if (source !== undefined && source !== 'default') continue; // the flag wins
    let parsed: unknown = value;
    try {
      if (option.parseArg) parsed = option.parseArg(value, option.variadic ? [] : (undefined as unknown as string));
      else if (option.variadic) parsed = [value];
    } catch (err) {
      throw new UsageError(`${where}: ${variable}: ${(err as Error).message}`);
    }
    cmd.setOptionValueWithSource(attribute, parsed, 'config');
  }
  return applied;
}

/** The known name a typo most likely meant: at most two edits away (or none). */
export function closest(name: string, known: string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const k of known) {
    const d = distance(name, k);
    if (d <= 2 && (!best || d < best.d)) best = { name: k, d };
  }
  return best?.name;
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** A boolean switch with no `RKS_*` variable of its own in commander: its variable, and whether it says the opposite. */
export interface Switch {
  variable: string;
  invert?: boolean;
}

/**
 * Every setting of `cmd` with its value (`values`: the options as the command runs with them)
 * and where it came from, secrets hidden: what `--print-config` prints.
 */
export function effectiveSettings(
  cmd: Command,
  values: Record<string, unknown>,
  fromFile: Set<string>,
  switches: Record<string, Switch>,
  secret: (o: Option) => boolean,
): Setting[] {
  const out: Setting[] = [];
  for (const o of cmd.options) {
    const attribute = o.attributeName();
    const sw = switches[attribute];
    const variable = o.envVar ?? sw?.variable;
    if (!variable) continue;
    let value = values[attribute];
    if (sw?.invert && typeof value === 'boolean') value = !value;
    const given = cmd.getOptionValueSource(attribute);
    const source: SettingSource =
      given === 'cli' ? 'flag' : fromFile.has(variable) ? 'file' : process.env[variable] !== undefined ? 'environment' : value === undefined ? 'unset' : 'default';
    if (value === undefined) {
      out.push({ variable, source: 'unset' });
      continue;
    }
    const text = Array.isArray(value) ? value.join(',') : String(value);
    out.push({ variable, value: secret(o) ? '(hidden)' : text, source });
  }
  return out;
}

/** The settings as lines a settings file takes (unset ones commented out). */
export function formatSettings(settings: Setting[]): string {
  const width = Math.max(...settings.map((s) => s.variable.length + (s.value?.length ?? 0) + 1));
  return settings
    .map((s) => (s.value === undefined ? `# ${s.variable}=` : `${`${s.variable}=${s.value}`.padEnd(width)}  # ${s.source}`))
    .join('\n');
}
