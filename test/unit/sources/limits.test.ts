// PIDs, file handles and conntrack: a count against a kernel limit.
import t from 'tap';
import { conntrackCheck, judgeConntrack, conntrackSection } from '../../../src/sources/probes/conntrack';
import { fileHandlesCheck, judgeFileHandles, parseFileNr, fileHandlesSection } from '../../../src/sources/probes/file-handles';
import { judgePids, parseLoadavgTasks, pidsCheck, pidsSection } from '../../../src/sources/probes/pids';
import { defaultsOf, fakeFs, fixture } from './fake-fs';

t.test('pids: /proc/loadavg total against min(pid_max, threads-max), as the kubelet counts', async (t) => {
  t.same(parseLoadavgTasks(fixture('loadavg-host.txt')), { running: 4, total: 177 });
  t.throws(() => parseLoadavgTasks('0.00 0.00\n'), /\/proc\/loadavg: expected "1\.00 0\.50 0\.25 2\/345 6789"/);
  // pid_max and threads-max as on this host (32768, 192729): pid_max is the limit.
  const at = (tasks: number) => judgePids({ tasks, pidMax: 32768, threadsMax: 192729 }, defaultsOf(pidsSection));
  t.same([at(177).status, at(177).reason], ['ok', 'PIDUsageOK']);
  t.equal(at(177).message, '177 of 32,768 PIDs in use (0.5%; limit is the lower of kernel.pid_max 32,768 and kernel.threads-max 192,729)');
  t.same([at(27000).status, at(27000).reason], ['warning', 'PIDUsageHigh']);
  t.same([at(30000).status, at(30000).reason], ['problem', 'PIDUsageCritical']);
  t.match(at(30000).message, 'podPidsLimit');
  t.equal(judgePids({ tasks: 900, pidMax: 4194304, threadsMax: 1000 }, defaultsOf(pidsSection)).status, 'problem', 'threads-max can be the lower');
});

t.test('file handles: file-nr against file-max, including the huge file-max systemd sets', async (t) => {
  t.same(parseFileNr(fixture('file-nr-host.txt')), { allocated: 758, max: 2466165 });
  t.throws(() => parseFileNr('12 0\n'), /expected three numbers/);
  const huge = parseFileNr('2016\t0\t9223372036854775807\n');
  t.equal(judgeFileHandles(huge, defaultsOf(fileHandlesSection)).status, 'ok');
  const full = judgeFileHandles({ allocated: 95_000, max: 100_000 }, defaultsOf(fileHandlesSection));
  t.same([full.status, full.reason], ['problem', 'FileHandleUsageCritical']);
  t.match(full.message, /^95,000 of 100,000 file handles in use \(95\.0% of fs\.file-max\); .* ENFILE/);
});

t.test("conntrack: over 90% is ConntrackFull (node-problem-detector's rule); no module is ok", async (t) => {
  const at = (entries: number) => judgeConntrack({ entries, max: 262144 }, defaultsOf(conntrackSection));
  t.same([at(1000).status, at(1000).reason], ['ok', 'ConntrackUsageOK']);
  t.same([at(220_000).status, at(220_000).reason], ['warning', 'ConntrackUsageHigh']);
  t.same([at(240_000).status, at(240_000).reason], ['problem', 'ConntrackFull']);
  t.match(at(240_000).message, /^conntrack table holds 240,000 of 262,144 entries \(91\.6%\); .*nf_conntrack_max/);
  t.equal(judgeConntrack({ entries: 5, max: 0 }, defaultsOf(conntrackSection)).status, 'ok', 'max 0 means no limit');

  const none = await conntrackCheck(defaultsOf(conntrackSection), fakeFs({})).run();
  t.same(none.map((f) => [f.status, f.reason]), [['ok', 'ConntrackNotLoaded']]);
  t.match(none[0]?.message, /^conntrack not loaded/);
  const loaded = fakeFs({ '/proc/sys/net/netfilter/nf_conntrack_count': '7\n', '/proc/sys/net/netfilter/nf_conntrack_max': '262144\n' });
  t.equal((await conntrackCheck(defaultsOf(conntrackSection), loaded).run())[0]?.message, 'conntrack table holds 7 of 262,144 entries (<0.1%)');
});

t.test('the live host: each gives one well-formed finding', async (t) => {
  const checks = [pidsCheck(defaultsOf(pidsSection)), fileHandlesCheck(defaultsOf(fileHandlesSection)), conntrackCheck(defaultsOf(conntrackSection))];
  for (const check of checks) {
    const findings = await check.run();
    t.equal(findings.length, 1, check.name);
    t.match(findings[0], { subject: '', status: 'ok', reason: /^(PIDUsageOK|FileHandleUsageOK|ConntrackUsageOK|ConntrackNotLoaded)$/ });
  }
});
