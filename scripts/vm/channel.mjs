// The host side of the VM ground's command channel: runs one bash script in a VM through the guest
// agent (guest-agent.sh) over the VM's virtio-serial socket, and exits with the script's exit code.
//   usage: node channel.mjs SOCKET TIMEOUT_S SCRIPT      (stdin, when not a terminal, is the script's stdin)
// Exit 125 with a "vm: " message when the script could not be run or did not answer in time.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';

const [socketPath, timeoutArg, script] = process.argv.slice(2);
const timeoutS = Number(timeoutArg);
if (!socketPath || !Number.isInteger(timeoutS) || timeoutS <= 0 || script === undefined) {
  process.stderr.write('usage: node channel.mjs SOCKET TIMEOUT_S SCRIPT\n');
  process.exit(2);
}
// The guest kills the script after TIMEOUT_S (and SIGKILLs it 5 s later); allow for the answer to travel.
const deadline = Date.now() + (timeoutS + 20) * 1000;

function fail(message) {
  process.stderr.write(`vm: ${message}\n`);
  process.exit(125);
}

async function readStdin() {
  if (process.stdin.isTTY) return Buffer.alloc(0);
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks);
}

const b64 = (buf) => (buf.length ? buf.toString('base64') : '-');
const unb64 = (s) => (s === '-' ? Buffer.alloc(0) : Buffer.from(s, 'base64'));

/** Connects to qemu's socket; qemu serves one client at a time, so a busy socket is retried. */
function open() {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = connect(socketPath);
      sock.once('connect', () => resolve(sock));
      sock.once('error', (err) => {
        if (Date.now() > deadline) reject(new Error(`cannot connect to ${socketPath}: ${err.message}`));
        else setTimeout(attempt, 200);
      });
    };
    attempt();
  });
}

const input = await readStdin();
const id = randomBytes(8).toString('hex');
const sock = await open().catch((err) => fail(err.message));
const timer = setTimeout(() => fail(`no answer from the guest agent within ${timeoutS + 20} s (${socketPath})`), deadline - Date.now());
let pending = '';
sock.setEncoding('utf8');
sock.on('data', (data) => {
  pending += data;
  for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    const [rid, code, out, err] = line.split(' ');
    // Answers to an earlier client that gave up arrive here too: only ours counts.
    if (rid !== id || out === undefined || err === undefined) continue;
    clearTimeout(timer);
    process.stdout.write(unb64(out));
    process.stderr.write(unb64(err));
    sock.destroy();
    process.exitCode = Number(code);
    return;
  }
});
sock.on('error', (err) => fail(`${socketPath}: ${err.message}`));
sock.on('close', () => {
  if (process.exitCode === undefined) fail(`qemu closed ${socketPath} before the answer (the VM stopped?)`);
});
sock.write(`${id} ${timeoutS} ${b64(Buffer.from(script, 'utf8'))} ${b64(input)}\n`);
