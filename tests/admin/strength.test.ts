import { STRONG_PASSWORD_BITS, passwordBits } from '../../src/admin/strength';

describe('passwordBits', () => {
  it.each([
    ['12345', false],
    ['password', false],
    ['Password123!', false],
    ['correcthorsebatterystaple', true],
    ['Tr0ub4dor&3-and-more', true],
    ['kq3ZpX0vLm9RtY2w', true],
    ['4q5mXz-7Lp_2VbNc8Rt1Ws0Y', true],
  ])('%s is strong enough: %s', (password, strong) => {
    expect(passwordBits(password) >= STRONG_PASSWORD_BITS).toBe(strong);
  });
});
