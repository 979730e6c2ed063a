import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPrivateAddress } from './ssrf.ts';

void test('private, loopback, link-local and metadata addresses are refused; public ones pass', () => {
  for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fd00:ec2::254', 'fc00::1', 'fe80::1', '::ffff:10.0.0.1', '::ffff:127.0.0.1']) {
    assert.equal(isPrivateAddress(a), true, a);
  }
  for (const a of ['8.8.8.8', '104.18.6.192', '2606:4700::6810:6c0', '172.32.0.1', '::ffff:8.8.8.8']) {
    assert.equal(isPrivateAddress(a), false, a);
  }
});
