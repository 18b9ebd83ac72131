import { BadRequest } from '../src/errors';
import { parseFqdn, parseName } from '../src/names';

describe('parseFqdn', () => {
  it.each(['example.com', 'www.example.com', '*.example.com', 'a-b.c_d.example', 'EXAMPLE.com', `${'a'.repeat(63)}.com`])(
    'accepts %s',
    (name) => {
      expect(parseFqdn(name)).toBe(name.toLowerCase());
    },
  );

  it.each([
    '*',
    'a',
    'config',
    'x/y.example.com',
    'test*',
    'a+b.example.com',
    '*.*.example.com',
    'www.*.example.com',
    '*.com*',
    '.example.com',
    'example.com.',
    'a..b',
    '',
    `${'a'.repeat(64)}.com`,
    `${'a.'.repeat(127)}com`,
    'exa mple.com',
    'ex%41mple.com',
    'groups/edge/config',
  ])('refuses %j with a reason', (name) => {
    expect(() => parseFqdn(name)).toThrow(BadRequest);
    expect(() => parseFqdn(name)).toThrow(/at least two labels/);
  });
});

describe('parseName', () => {
  it('accepts letters, digits and - and lower-cases', () => {
    expect(parseName('group name', 'Edge-EU-1')).toBe('edge-eu-1');
  });
  it.each(['', 'a_b', 'a.b', 'a/b', 'x'.repeat(65), 'a*', 'ä'])('refuses %j', (name) => {
    expect(() => parseName('node id', name)).toThrow(/invalid node id/);
  });
});
