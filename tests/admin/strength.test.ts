import { weakness } from '../../src/admin/strength';

describe('the administrator password floor', () => {
  it.each([
    ['12345', /bits/],
    ['password', /bits/],
    ['Password123!', /bits/],
    ['aaaaaaaaaaaaaaaaaa', /words or patterns/],
    ['passwordpassword1', /words or patterns/],
    ['Password12345678!', /words or patterns/],
    ['correcthorsebatterystaple', /words or patterns/],
  ])('%s is too weak', (password, why) => {
    expect(weakness(password)).toMatch(why);
  });

  it.each(['kq3ZpX0vLm9RtY2w', '4q5mXz-7Lp_2VbNc8Rt1Ws0Y', 'Tr0ub4dor&3-and-more'])('%s is strong enough', (password) => {
    expect(weakness(password)).toBeNull();
  });
});
