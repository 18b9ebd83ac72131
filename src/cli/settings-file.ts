import fs from 'node:fs';
import { Command, Option } from 'commander';
import { UsageError } from '../config';

/** Where a setting's value came from, strongest first. */
export type SettingSource = 'flag' | 'environment' | 'file' | 'default' | 'unset';

/** A setting as `--print-config` shows it. */
export interface Setting {
  variable: string;
  value?: string;
  source: SettingSource;
}

const LINE = /^\s*(?:export\s+)?([A-Z][A-Z0-9_]*)\s*=\s*(.*?)\s*$/;

/**
 * A settings file: `RKS_*=value` lines, the same names and values as the environment (and as
 * systemd's `EnvironmentFile=` reads them), `#` comments, blank lines, values optionally quoted.
 */
export function readSettingsFile(file: string): Map<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--config ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const out = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    if (/^\s*(#|$)/.test(raw)) return;
    const m = LINE.exec(raw);
    if (!m) throw new UsageError(`--config ${file}, line ${i + 1}: not NAME=value`);
    const value = m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
    out.set(m[1]!, value);
  });
  return out;
}

/**
 * Applies `--config FILE` to a parsed command, under the flags and the environment: a variable
 * the environment lacks is taken from the file, for the option it sets (and for the
 * environment's own readers: boolean switches, VAULT_ADDR). Unknown names are refused, so a typo
 * is not a setting silently ignored. `switches` are the command's variables that no option
 * carries (read from the environment when the command runs). Answers the variables the file set.
 */
export function applySettingsFile(cmd: Command, file: string, switches: string[]): Set<string> {
  const settings = readSettingsFile(file);
  const options = new Map(cmd.options.filter((o) => o.envVar).map((o) => [o.envVar!, o] as const));
  const fromFile = new Set<string>();
  for (const [variable, value] of settings) {
    const option = options.get(variable);
    if (!option && !switches.includes(variable)) throw new UsageError(`--config ${file}: ${variable} is no setting of rks ${cmd.name()} (see rks ${cmd.name()} --help)`);
    if (process.env[variable] !== undefined) continue; // the environment wins
    process.env[variable] = value;
    fromFile.add(variable);
    if (!option) continue;
    const attribute = option.attributeName();
    const source = cmd.getOptionValueSource(attribute);
    if (source !== undefined && source !== 'default') continue; // the flag wins
    let parsed: unknown = value;
    try {
      if (option.parseArg) parsed = option.parseArg(value, option.variadic ? [] : (undefined as unknown as string));
      else if (option.variadic) parsed = [value];
    } catch (err) {
      throw new UsageError(`--config ${file}: ${variable}: ${(err as Error).message}`);
    }
    cmd.setOptionValueWithSource(attribute, parsed, 'config');
  }
  return fromFile;
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
