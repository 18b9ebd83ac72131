import { InvalidArgumentError, Option } from 'commander';

/** An option with its RKS_* environment variable (flags win over the environment). */
export function opt(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(env);
}

/**
 * Boolean environment variables, parsed strictly: commander treats any set value of a
 * flag's variable as "on", so RKS_NO_TLS=0 would disable TLS.
 */
export function envFlag(name: string): boolean | undefined {
  const v = process.env[name];
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
