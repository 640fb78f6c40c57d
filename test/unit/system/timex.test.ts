// adjtimex() of the native addon against the live kernel, checked field by field against an independent
// reader: python3 calling glibc's adjtimex through ctypes (which issues clock_adjtime, where the addon
// makes the adjtimex system call), with its own struct timex layout.
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { loadNative, type NativeTimex } from '../../../src/system/native';

// Prints the clock state as JSON; with "set MAXERR ESTERR STATUS" it first writes those three (needs
// CAP_SYS_TIME) and prints the state it replaced.
const PY_ADJTIMEX = `
import ctypes, ctypes.util, json, sys
L = ctypes.c_long
class Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", L), ("freq", L), ("maxerror", L), ("esterror", L),
                ("status", ctypes.c_int), ("constant", L), ("precision", L), ("tolerance", L),
                ("time_sec", L), ("time_usec", L), ("tick", L), ("ppsfreq", L), ("jitter", L),
                ("shift", ctypes.c_int), ("stabil", L), ("jitcnt", L), ("calcnt", L), ("errcnt", L),
                ("stbcnt", L), ("tai", ctypes.c_int), ("pad", ctypes.c_int * 11)]
ADJ_MAXERROR, ADJ_ESTERROR, ADJ_STATUS, ADJ_NANO = 0x4, 0x8, 0x10, 0x2000
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
def call(tx):
    state = libc.adjtimex(ctypes.byref(tx))
    if state < 0:
        sys.exit("adjtimex: errno %d" % ctypes.get_errno())
    return state
before = Timex()
state = call(before)
if sys.argv[1:2] == ["set"]:
    w = Timex(modes=ADJ_MAXERROR | ADJ_ESTERROR | ADJ_STATUS, maxerror=int(sys.argv[2]),
              esterror=int(sys.argv[3]), status=int(sys.argv[4]))
    call(w)
nano = before.status & ADJ_NANO
print(json.dumps({"state": state, "status": before.status,
                  "offsetNs": before.offset * (1 if nano else 1000), "frequencyPpm": before.freq / 65536,
                  "maxErrorUs": before.maxerror, "estErrorUs": before.esterror, "constant": before.constant,
                  "tickUs": before.tick, "taiS": before.tai}))
`;

function python(args: string[] = []): NativeTimex {
  const res = spawnSync('python3', ['-c', PY_ADJTIMEX, ...args], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`python3 adjtimex ${args.join(' ')} failed: ${res.stderr.trim() || res.error}`);
  return JSON.parse(res.stdout) as NativeTimex;
}

/** The addon's reading taken between two independent ones: equal, except maxerror, which the kernel raises each second. */
function compareLive(t: tap.Test): NativeTimex {
  const first = python();
  const ours = loadNative().adjtimex();
  const last = python();
  const { maxErrorUs, ...rest } = ours;
  const { maxErrorUs: firstMax, ...firstRest } = first;
  t.same(rest, firstRest, 'every field but maxerror equals libc adjtimex');
  t.ok(maxErrorUs >= firstMax && maxErrorUs <= last.maxErrorUs, `maxerror ${maxErrorUs} between ${firstMax} and ${last.maxErrorUs}`);
  return ours;
}

t.test('reads the live kernel state exactly as libc adjtimex does', async (t) => {
  const tx = compareLive(t);
  t.same(Object.keys(tx), ['state', 'status', 'offsetNs', 'frequencyPpm', 'maxErrorUs', 'estErrorUs', 'constant', 'tickUs', 'taiS']);
  t.ok(tx.state >= 0 && tx.state <= 5, `state ${tx.state} is one of TIME_OK..TIME_ERROR`);
  t.ok(tx.maxErrorUs >= 0 && tx.maxErrorUs <= 16_000_000, 'maxerror within the kernel limit');
  t.equal(tx.state === 5, (tx.status & 0x40) !== 0 || (tx.status & 0x1000) !== 0 || (tx.status & 0x4) !== 0, 'TIME_ERROR goes with UNSYNC/CLOCKERR/PPS bits');
});

t.test('distinct values written by a stand-in NTP daemon come back in the right fields; reading changes nothing', async (t) => {
  const now = python();
  if ((now.status & 0x40) === 0) {
    // A daemon disciplines this clock: leave its state alone, its values already differ field by field.
    t.comment(`clock synchronised by a daemon (status ${now.status}): compared live values only`);
    compareLive(t);
    return;
  }
  // Nobody owns the kernel's NTP state (STA_UNSYNC set). Write values no field shares, keep UNSYNC so the
  // clock is never claimed synchronised, add FREQHOLD (inert without a PLL update), and put back what was there.
  const written = { maxErrorUs: 1_234_567, estErrorUs: 76_543, status: 0x40 | 0x80 };
  const saved = python(['set', String(written.maxErrorUs), String(written.estErrorUs), String(written.status)]);
  t.teardown(() => python(['set', String(saved.maxErrorUs), String(saved.estErrorUs), String(saved.status)]));
  const tx = compareLive(t);
  t.equal(tx.status, written.status);
  t.equal(tx.estErrorUs, written.estErrorUs);
  t.ok(tx.maxErrorUs >= written.maxErrorUs && tx.maxErrorUs < written.maxErrorUs + 5_000, `maxerror ${tx.maxErrorUs} grew from what was written`);
  t.equal(tx.state, 5, 'UNSYNC still reads as TIME_ERROR');

  for (let i = 0; i < 3; i++) loadNative().adjtimex();
  const after = python();
  t.same([after.status, after.estErrorUs, after.frequencyPpm, after.offsetNs], [tx.status, tx.estErrorUs, tx.frequencyPpm, tx.offsetNs]);
});

t.test('takes no arguments', async (t) => {
  const adjtimex = loadNative().adjtimex as unknown as (arg: number) => NativeTimex;
  t.throws(() => adjtimex(1), { name: 'TypeError', message: 'adjtimex: takes no arguments (it only reads the clock state)' });
});
