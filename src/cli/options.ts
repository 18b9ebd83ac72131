import { InvalidArgumentError, Option } from 'commander';
import type { SettingSpec } from '../settings';

/** An option with its RKS_* environment variable (flags win over the environment). */
export function opt(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(env);
}

/**
 * Boolean environment variables, parsed strictly: commander treats any set value of a
 * flag's variable as "on", so RKS_NO_TLS=0 would disable TLS.
 */
export function envFlag(name: string, v = process.env[name]): boolean | undefined {
  if (v === undefined || v === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new InvalidArgumentError(`${name} must be true or false, got '${v}'`);
}

/** 30d, 12h, 45m, 90s or plain seconds (--expiring, --lifetime, --renew-before). */
export function duration(value: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`'${value}' is not a duration (30d, 12h, 45m, 90s or seconds)`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

/**
 * A setting's option. A switch's variable is read when the command runs (commander would take
 * RKS_NO_TLS=0 as on), so it is not given to commander.
 */
export function optionOf(s: SettingSpec<unknown>): Option {
  if (s.toggle) return new Option(s.flag, `${s.help} (env ${s.env}=true)`).default(s.default);
  const o = opt(s.flag, s.help, s.env);
  if (s.required) o.makeOptionMandatory();
  if (s.parse) o.argParser(s.parse as (raw: string) => unknown);
  if (s.choices) o.choices(s.choices);
  const dflt = typeof s.default === 'function' ? (s.default as () => unknown)() : s.default;
  if (dflt !== undefined) o.default(dflt);
  return o;
}
