/**
 * How many guesses a password would take at best, in bits: its length times the bits of the
 * smallest alphabet of character classes it draws from. A floor, not a verdict: it cannot see
 * a dictionary word, only a password too short or too plain to be one a machine made.
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

/** What rks asks of the administrator's password unless told to accept less. */
export const STRONG_PASSWORD_BITS = 80;
