// Lease times, expiry with the clock-skew margin, and names.
import t from 'tap';
import { heldBy, leaseEnd, lockoutName, microTime, type Lease } from '../../../src/repair/fleet/leases';

t.test('MicroTime has exactly six fractional digits, as the API server parses it', async (t) => {
  t.equal(microTime(Date.parse('2026-01-02T03:04:05.678Z')), '2026-01-02T03:04:05.678000Z');
  t.equal(microTime(Date.parse('2026-01-02T03:04:05Z')), '2026-01-02T03:04:05.000000Z');
});

t.test('a Lease is held until renewTime + duration + skew as others see it', async (t) => {
  const lease: Lease = {
    metadata: { name: 'node-health-repair-0' },
    spec: { holderIdentity: 'n1', leaseDurationSeconds: 10, renewTime: '2026-01-01T00:00:00.000000Z', acquireTime: '2025-12-31T23:00:00.000000Z' },
  };
  const end = Date.parse('2026-01-01T00:00:10Z');
  t.equal(leaseEnd(lease.spec), end, 'renewTime, not acquireTime, counts');
  t.equal(heldBy(lease, end + 999, 1000), 'n1', 'still held within the skew margin');
  t.equal(heldBy(lease, end + 1000, 1000), undefined, 'free after it');
  t.equal(heldBy({ ...lease, spec: { ...lease.spec, holderIdentity: '' } }, end - 5000, 1000), undefined, 'a released Lease is free');
  t.equal(heldBy({ ...lease, spec: { holderIdentity: 'n1' } }, end, 1000), undefined, 'no times or duration: free');
  t.equal(leaseEnd({ leaseDurationSeconds: 5, acquireTime: '2026-01-01T00:00:00Z' }), Date.parse('2026-01-01T00:00:05Z'), 'acquireTime when never renewed');
});

t.test('lockout Lease names stay within the 253-character limit', async (t) => {
  t.equal(lockoutName('worker-1'), 'node-health-lockout-worker-1');
  const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}`;
  const name = lockoutName(long);
  t.ok(name.length <= 253, `${name.length} characters`);
  t.match(name, /^node-health-lockout-a+\..*-[0-9a-f]{8}$/);
  t.not(lockoutName(`${long}x`), name, 'different nodes, different names');
});
