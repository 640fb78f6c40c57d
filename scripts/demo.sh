#!/usr/bin/env bash
# The agent's main job, end to end: a kernel hung-task line on a node becomes KernelDeadlock=True and a
# TaskHung Event on its Node object, written with the node's own kubelet credentials, as an admin sees it.
#
#   npm run demo          (root, on a machine prepared by scripts/setup.sh)
#
# Builds the .deb, starts the test cluster (kube-apiserver with Node,RBAC + NodeRestriction), boots a
# node in a box, lays out kubelet credentials where the kubelet keeps them, installs the .deb, writes the
# kernel line into the box's journal, waits for the condition on the Node and prints it with kubectl.
# Everything it started is torn down on exit, also on failure or Ctrl-C. See docs/kubernetes.md ("Demo").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
readonly ROOT
readonly CLUSTER_SH=$ROOT/scripts/cluster/cluster.sh BOX_SH=$ROOT/scripts/box/box.sh
readonly NAME=demo-$$ NODE=demo-node-$$
readonly LINE='INFO: task docker:7 blocked for more than 300 seconds.'
readonly CONDITION_TIMEOUT=${NODE_HEALTH_DEMO_TIMEOUT:-60}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() {
  echo "demo: $*" >&2
  exit 1
}

[[ $EUID -eq 0 ]] || die "run as root: the demo boots a systemd machine (systemd-nspawn) and starts a test cluster"

work=$(mktemp -d /tmp/node-health-demo.XXXXXX)
cluster_started=0 box_started=0
teardown() {
  local rc=$?
  trap - EXIT INT TERM
  step "tearing down"
  ((box_started)) && { bash "$BOX_SH" down "$NODE" || echo "demo: could not remove box $NODE: run scripts/box/box.sh down $NODE" >&2; }
  ((cluster_started)) && { bash "$CLUSTER_SH" down "$NAME" || echo "demo: could not stop cluster $NAME: run scripts/cluster/cluster.sh down $NAME" >&2; }
  rm -rf "$work"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

kubectl() { bash "$CLUSTER_SH" kubectl "$NAME" "$@"; }
in_box() { bash "$BOX_SH" exec "$NODE" -- "$@"; }
# Status of a condition on the Node ("" while it is absent).
condition() { kubectl get node "$NODE" -o jsonpath="{.status.conditions[?(@.type==\"$1\")].status}"; }

step "building the packages"
# test/helpers/packages.ts rebuilds only when an input changed, under a lock shared with the tests.
"$ROOT/node_modules/.bin/esbuild" "$ROOT/test/helpers/packages.ts" --bundle --platform=node --format=cjs \
  --log-level=warning --outfile="$work/packages.js" "--define:__dirname=\"$ROOT/test/helpers\""
node -e 'require("fs").writeFileSync(process.argv[2], require(process.argv[1]).ensurePackages().deb)' \
  "$work/packages.js" "$work/deb" >&2
deb=$(cat "$work/deb")
echo "$deb"

step "starting the test cluster '$NAME' with Node $NODE"
cluster_started=1
bash "$CLUSTER_SH" up "$NAME" "$NODE"
kubectl get nodes

step "booting the node in a box ($NODE)"
box_started=1
bash "$BOX_SH" up "$NODE" >/dev/null
in_box systemctl is-system-running || true

step "laying out the kubelet's credentials"
# cluster.sh keeps them under nodes/NODE exactly as they sit under / on a kubeadm node.
tar -C "$(bash "$CLUSTER_SH" env "$NAME" | sed -n 's/^NODE_HEALTH_CLUSTER_NODES=//p')/$NODE" -cf "$work/creds.tar" etc var
bash "$BOX_SH" cp "$NODE" "$work/creds.tar" /tmp/
in_box tar -C / -xf /tmp/creds.tar
in_box ls -l /etc/kubernetes/kubelet.conf /var/lib/kubelet/pki/

step "installing ${deb##*/}"
bash "$BOX_SH" cp "$NODE" "$deb" /tmp/
in_box env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/${deb##*/}" | tail -n 3
in_box systemctl is-active node-health-agent

step "waiting for the agent to report its conditions on Node $NODE"
for ((i = 0; i < CONDITION_TIMEOUT * 5; i++)); do
  [[ $(condition KernelDeadlock) == False ]] && break
  sleep 0.2
done
[[ $(condition KernelDeadlock) == False ]] ||
  die "the agent did not write KernelDeadlock within ${CONDITION_TIMEOUT}s; its log:"$'\n'"$(in_box journalctl -u node-health-agent --no-pager -n 30)"
echo "KernelDeadlock=False (agent connected as system:node:$NODE)"

step "the kernel reports a hung task: $LINE"
# The shipped kernel rules read _TRANSPORT=kernel. `systemd-cat -t kernel` would be stored with
# _TRANSPORT=stdout, and journald in a box cannot read /dev/kmsg (nspawn withholds CAP_SYSLOG; the ring
# buffer is the host's), so the entry goes into the box's system journal the way journald would have
# stored the kernel's line, through systemd-journal-remote.
bash "$BOX_SH" exec "$NODE" -- bash -s -- "$LINE" <"$ROOT/scripts/box/kernel-line.sh"
started=$(date +%s%N)
in_box journalctl --no-pager -o short-precise _TRANSPORT=kernel -n 1

step "waiting for KernelDeadlock=True on Node $NODE"
for ((i = 0; i < CONDITION_TIMEOUT * 20; i++)); do
  [[ $(condition KernelDeadlock) == True ]] && break
  sleep 0.05
done
[[ $(condition KernelDeadlock) == True ]] ||
  die "KernelDeadlock not True within ${CONDITION_TIMEOUT}s; the agent's log:"$'\n'"$(in_box journalctl -u node-health-agent --no-pager -n 30)"
echo "KernelDeadlock=True, seen by the admin $((($(date +%s%N) - started) / 1000000)) ms after the line was written"

step "kubectl get node $NODE -o yaml   (status.conditions)"
kubectl get node "$NODE" -o yaml | sed -n '/^  conditions:/,/^  [a-zA-Z]/{/^  [a-zA-Z]/!p;/^  conditions:/p}'

step "kubectl describe node $NODE"
# The TaskHung Event may be a moment behind the condition.
for ((i = 0; i < 50; i++)); do
  [[ -n $(kubectl get events --field-selector "involvedObject.name=$NODE,reason=TaskHung" -o name) ]] && break
  sleep 0.2
done
kubectl describe node "$NODE"

step "kubectl get events --field-selector involvedObject.name=$NODE"
kubectl get events --field-selector "involvedObject.name=$NODE" \
  -o custom-columns=LAST:.lastTimestamp,TYPE:.type,REASON:.reason,OBJECT:.involvedObject.name,SOURCE:.source.component,COUNT:.count,MESSAGE:.message
