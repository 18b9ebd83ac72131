/**
 * The key a source address is counted under. `client`: the address itself, or for IPv6 its
 * /64, which one client usually holds whole (counting single IPv6 addresses would give it 2^64
 * tries). `site`: an IPv4 /24 or an IPv6 /48, where a few sources may hold all of a scarce
 * resource and a stranger with a network or a prefix must not count as 256 or 65,536 of them.
 */
export function sourceKey(address: string, scope: 'client' | 'site' = 'client'): string {
  const a = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  if (!a.includes(':')) return scope === 'site' ? `${a.split('.').slice(0, 3).join('.')}.0/24` : a;
  const v6Bits = scope === 'site' ? 48 : 64;
  const [head, tail = ''] = a.split('::');
  const left = head ? head.split(':') : [];
  const right = a.includes('::') && tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, v6Bits / 16)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(':')}::/${v6Bits}`;
}

/** Parses `host:port`, `[v6]:port` or `port`. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen) ?? /^()()(\d+)$/.exec(listen);
  if (!m) throw new Error(`--listen must be host:port, got '${listen}'`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`--listen port out of range: ${port}`);
  return { host: m[1] || m[2] || '0.0.0.0', port };
}
