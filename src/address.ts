/**
 * The key a source address is counted under: the address itself, or for IPv6 its /64, which
 * one client usually holds whole (counting single IPv6 addresses would give it 2^64 tries).
 * `v6Bits` 48 counts a whole site's allocation as one: where a few sources may hold all of a
 * scarce resource, a stranger with a /56 or /48 must not count as 256 or 65,536 of them.
 */
export function sourceKey(address: string, v6Bits: 48 | 64 = 64): string {
  const a = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  if (!a.includes(':')) return a;
  const [head, tail = ''] = a.split('::');
  const left = head ? head.split(':') : [];
  const right = a.includes('::') && tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, v6Bits / 16)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(':')}::/${v6Bits}`;
}
