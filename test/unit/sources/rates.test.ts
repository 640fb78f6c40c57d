// NIC error/drop rates and the TCP retransmission rate: judged between two samples.
import t from 'tap';
import { ignored, judgeNic, nicCheck, parseNetDev, nicSection } from '../../../src/sources/probes/nic';
import { judgeRetransmits, parseSnmp, tcpCheck, tcpCounters, tcpSection } from '../../../src/sources/probes/tcp';
import { defaultsOf, fakeFs, fixture } from './fake-fs';

/** A clock the test moves. */
function clock() {
  let ms = 1_000;
  return { now: () => ms, advance: (s: number) => (ms += s * 1000) };
}

t.test('parses a captured /proc/net/dev', async (t) => {
  const nics = parseNetDev(fixture('net-dev-host-1.txt'));
  t.same([...nics.keys()], ['lo', 'ifb0', 'ifb1', 'eth0']);
  t.same(nics.get('eth0'), { rxPackets: 28718, txPackets: 20576, errors: 0, drops: 0 });
  t.throws(() => parseNetDev('h\nh\n  eth0: 1 2 3\n'), /malformed line "eth0: 1 2 3"/);
});

t.test('ignore patterns: exact names and a trailing *', async (t) => {
  const skip = defaultsOf(nicSection).ignore;
  t.same(['lo', 'eth0', 'veth1a2b', 'cali123', 'ens5', 'ifb0', 'kube-ipvs0', 'flannel.1'].filter((n) => !ignored(n, skip)), ['eth0', 'ens5', 'flannel.1']);
});

t.test('rates: errors per second first, then drops; figures and limits in the message', async (t) => {
  const base = { rxPackets: 0, txPackets: 0, errors: 0, drops: 0 };
  const after = (errors: number, drops: number) => ({ rxPackets: 30000, txPackets: 30000, errors, drops });
  const judge = (errors: number, drops: number) => judgeNic('eth0', base, after(errors, drops), 30, defaultsOf(nicSection));
  t.same([judge(0, 0).status, judge(0, 0).reason], ['ok', 'NICOK']);
  t.equal(judge(0, 0).message, 'eth0: 0.0/s errors and 0.0/s drops over the last 30 s, 2,000/s packets');
  t.same([judge(60, 0).status, judge(60, 0).reason], ['warning', 'NICErrorsHigh']);
  t.match(judge(60, 0).message, /^eth0: 2\.0\/s errors \(0\.1% of packets\) and 0\.0\/s drops .*\(warning at 1\/s, problem at 100\/s\): errors point at the link/);
  t.same([judge(0, 3000).status, judge(0, 3000).reason], ['warning', 'NICDropsHigh']);
  t.same([judge(0, 30000).status, judge(0, 30000).reason], ['problem', 'NICDropsCritical']);
  t.same([judge(60, 30000).reason], ['NICDropsCritical'], 'the worse of the two names the reason');
  t.same([judge(3000, 30000).reason], ['NICErrorsCritical'], 'errors first when both are as bad');
});

t.test('the NIC check: a baseline first, then rates; new or reset interfaces start over', async (t) => {
  const files = { '/proc/net/dev': fixture('net-dev-host-1.txt') };
  const c = clock();
  const check = nicCheck(defaultsOf(nicSection), fakeFs(files), c.now);
  const first = await check.run();
  t.same(first.map((f) => [f.status, f.reason]), [['ok', 'NICBaseline']]);
  t.match(first[0]?.message, /^baseline taken; rates are judged from the next run \(since boot: eth0 0 errors, 0 drops in 49,294 packets\)$/);

  // The real second sample, captured after the first.
  files['/proc/net/dev'] = fixture('net-dev-host-2.txt');
  c.advance(5);
  t.same((await check.run()).map((f) => [f.subject, f.status, f.reason]), [['eth0', 'ok', 'NICOK']]);

  // Hand-made from the captured one: eth0 gains 900 receive errors in 30 s; a new ens6 appears.
  files['/proc/net/dev'] = (files['/proc/net/dev'] as string)
    .replace(/(eth0: +\d+ +\d+) +0/, '$1  900')
    .concat('  ens6:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n');
  c.advance(30);
  const third = await check.run();
  t.same(third.map((f) => [f.subject, f.status, f.reason]), [['eth0', 'warning', 'NICErrorsHigh'], ['', 'ok', 'NICBaseline']]);
  t.match(third[0]?.message, 'eth0: 30/s errors');

  // The counters went down: the interface was recreated, so this is a new baseline, not a negative rate.
  files['/proc/net/dev'] = fixture('net-dev-host-1.txt');
  c.advance(30);
  t.same((await check.run()).map((f) => f.reason), ['NICBaseline']);
});

t.test('only ignored interfaces: nothing to watch', async (t) => {
  const only = 'h\nh\n    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n';
  const [f] = await nicCheck(defaultsOf(nicSection), fakeFs({ '/proc/net/dev': only })).run();
  t.match(f, { status: 'ok', reason: 'NICOK', message: /^no interfaces to watch/ });
});

t.test('parses captured /proc/net/snmp pairs of name and value lines', async (t) => {
  const snmp = parseSnmp(fixture('net-snmp-host-1.txt'));
  t.same([...snmp.keys()], ['Ip', 'Icmp', 'IcmpMsg', 'Tcp', 'Udp', 'UdpLite']);
  t.equal(snmp.get('Tcp')?.get('MaxConn'), -1);
  t.same(tcpCounters(snmp), { outSegs: 20439, retransSegs: 0 });
  t.throws(() => parseSnmp('Tcp: A B\nUdp: 1 2\n'), /lines 1 and 2 do not pair up/);
  t.throws(() => tcpCounters(parseSnmp('Udp: InDatagrams\nUdp: 1\n')), /no Tcp OutSegs and RetransSegs/);
});

t.test('retransmissions: a share of segments sent, not judged on too few', async (t) => {
  const cfg = defaultsOf(tcpSection);
  const judge = (sent: number, again: number) => judgeRetransmits({ outSegs: 0, retransSegs: 0 }, { outSegs: sent, retransSegs: again }, 30, cfg);
  t.same([judge(100_000, 100).status, judge(100_000, 100).reason], ['ok', 'TCPRetransmitOK']);
  t.equal(judge(100_000, 100).message, '0.1% of TCP segments retransmitted in the last 30 s (100 of 100,000)');
  t.same([judge(100_000, 2_000).status, judge(100_000, 2_000).reason], ['warning', 'TCPRetransmitHigh']);
  t.same([judge(100_000, 6_000).status, judge(100_000, 6_000).reason], ['problem', 'TCPRetransmitCritical']);
  t.match(judge(100_000, 6_000).message, /warning at 1%, problem at 5%: packets are lost/);
  const few = judge(500, 400);
  t.same([few.status, few.reason], ['ok', 'TCPRetransmitOK']);
  t.match(few.message, /too few to judge \(fewer than 1,000\)/);
});

t.test('the TCP check over the captured pair of samples, then a hand-made lossy one', async (t) => {
  const files = { '/proc/net/snmp': fixture('net-snmp-host-1.txt') };
  const c = clock();
  const check = tcpCheck(defaultsOf(tcpSection), fakeFs(files), c.now);
  const first = await check.run();
  t.same(first.map((f) => [f.status, f.reason]), [['ok', 'TCPBaseline']]);
  t.match(first[0]?.message, 'since boot: 0 of 20,439 segments retransmitted (0.0%)', 'zero shows as 0.0%');

  files['/proc/net/snmp'] = fixture('net-snmp-host-2.txt');
  c.advance(5);
  const second = await check.run();
  t.same(second.map((f) => [f.status, f.reason]), [['ok', 'TCPRetransmitOK']]);
  t.equal(second[0]?.message, '0.1% of TCP segments retransmitted in the last 5 s (1 of 1,289)');

  files['/proc/net/snmp'] = (files['/proc/net/snmp'] as string).replace(/^(Tcp: (?:\S+ ){10})21728 1 /m, '$1 31728 801 ');
  c.advance(30);
  const third = await check.run();
  t.same(third.map((f) => [f.status, f.reason]), [['problem', 'TCPRetransmitCritical']]);
  t.match(third[0]?.message, /^8\.0% of TCP segments retransmitted in the last 30 s \(800 of 10,000\)/);
});

t.test('the live host: baseline, then a judgement', async (t) => {
  for (const check of [nicCheck(defaultsOf(nicSection)), tcpCheck(defaultsOf(tcpSection))]) {
    const first = await check.run();
    t.match(first.at(-1), { status: 'ok', reason: /Baseline$|^NICOK$/ }, check.name);
    await new Promise((r) => setTimeout(r, 50));
    for (const f of await check.run()) t.match(f, { status: /^(ok|warning|problem)$/, subject: /^[\w.-]*$/ }, check.name);
  }
});
