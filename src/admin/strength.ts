import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';

/**
 * A floor on how many guesses a password would take: its length times the bits of the
 * character classes it draws from. It cannot see a word or a pattern; `guessesLog10` can.
 */
export function passwordBits(password: string): number {
  const chars = [...password];
  let pool = 0;
  if (chars.some((c) => c >= 'a' && c <= 'z')) pool += 26;
  if (chars.some((c) => c >= 'A' && c <= 'Z')) pool += 26;
  if (chars.some((c) => c >= '0' && c <= '9')) pool += 10;
  if (chars.some((c) => !/[a-zA-Z0-9]/.test(c))) pool += 33;
  return pool ? Math.floor(chars.length * Math.log2(pool)) : 0;
}

/**
 * zxcvbn's estimate of the guesses a password takes (log10): words, keyboard walks, repeats,
 * dates. Asked once, at start: its ranked dictionaries (some 20 MB) are not kept.
 */
export function guessesLog10(password: string): number {
  return new ZxcvbnFactory({ dictionary: { ...common.dictionary }, graphs: common.adjacencyGraphs }).check(password.slice(0, 256)).guessesLog10;
}

/** What rks asks of the administrator's password unless told to accept less. */
export const STRONG_PASSWORD_BITS = 80;
/** zxcvbn's estimate tops out at 10^length for random strings: 16 random characters reach it. */
export const STRONG_PASSWORD_GUESSES_LOG10 = 16;

/** Why a password is too weak for the administrator, or null when it is strong enough. */
export function weakness(password: string): string | null {
  const bits = passwordBits(password);
  if (bits < STRONG_PASSWORD_BITS) return `about ${bits} bits; rks asks ${STRONG_PASSWORD_BITS}`;
  const guesses = guessesLog10(password);
  if (guesses < STRONG_PASSWORD_GUESSES_LOG10) return `made of words or patterns: about 10^${Math.floor(guesses)} guesses; rks asks 10^${STRONG_PASSWORD_GUESSES_LOG10}`;
  return null;
}
