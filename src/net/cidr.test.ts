import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipBucket } from './cidr.ts';

void test('ipBucket: IPv6 by /64 whatever the notation, IPv4 by address', () => {
  const cases: readonly [string, string][] = [
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:aaaa::3', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:0:0:0:9', '2001:db8:1:2::/64'],
    ['2001:db8::', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['203.0.113.7', '203.0.113.7'],
  ];
  for (const [ip, bucket] of cases) assert.equal(ipBucket(ip), bucket, ip);
  assert.notEqual(ipBucket('2001:db8:1:2::1'), ipBucket('2001:db8:1:3::1'));
});
