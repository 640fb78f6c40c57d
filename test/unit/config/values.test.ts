import t from 'tap';
import { parseBytes, parseDuration, formatDuration, ValueError } from '../../../src/config/values';

t.test('durations in systemd style', async (t) => {
  t.equal(parseDuration('500ms'), 500);
  t.equal(parseDuration('30s'), 30_000);
  t.equal(parseDuration('2m'), 120_000);
  t.equal(parseDuration('1h30m'), 5_400_000);
  t.equal(parseDuration('1h 30m'), 5_400_000);
  t.equal(parseDuration('1.5s'), 1500);
  for (const bad of ['', '10', 's', '10 parsecs', '5m junk']) {
    t.throws(() => parseDuration(bad), ValueError, `"${bad}" is refused`);
  }
  t.equal(formatDuration(120_000), '2m');
  t.equal(formatDuration(1500), '1500ms');
});

t.test('sizes with Kubernetes suffixes', async (t) => {
  t.equal(parseBytes('4096'), 4096);
  t.equal(parseBytes('512Mi'), 512 * 1024 * 1024);
  t.equal(parseBytes('2G'), 2e9);
  t.throws(() => parseBytes('2 gigs'), ValueError);
});
