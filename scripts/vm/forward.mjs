// Run by qemu's user-mode network for each connection the guest opens to the forwarded address
// (vm.sh --forward): joins the connection (this process's stdin/stdout) to a port on the host's loopback.
//   usage: node forward.mjs PORT
import { connect } from 'node:net';

const port = Number(process.argv[2]);
const upstream = connect({ host: '127.0.0.1', port });
process.stdin.pipe(upstream);
upstream.pipe(process.stdout);
upstream.on('error', (err) => {
  process.stderr.write(`vm forward to 127.0.0.1:${port}: ${err.message}\n`);
  process.exit(1);
});
upstream.on('close', () => process.exit(0));
process.stdin.on('end', () => upstream.end());
