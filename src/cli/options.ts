import { InvalidArgumentError, Option } from 'commander';

/** An option with its RKS_* environment variable (flags win over the environment). */
export function opt(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(env);
}

/** 0 or more, at most `max`. */
export function wholeNumber(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be 0 or a positive integer`);
    if (n > max) throw new InvalidArgumentError(`${name} must be at most ${max}`);
    return n;
  };
}

export function positiveInt(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
    if (n > max) throw new InvalidArgumentError(`${name} must be at most ${max}`);
    return n;
  };
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
