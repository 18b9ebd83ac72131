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
