#!/usr/bin/env bash
# A throwaway Kubernetes control plane for tests and demos: etcd and kube-apiserver (built by build.sh)
# on 127.0.0.1 with the authorization real clusters run for nodes (Node,RBAC + NodeRestriction), a PKI
# made with openssl, an admin kubeconfig, and per-node kubelet credentials laid out as on a kubeadm node.
# See docs/kubernetes.md ("The test cluster").
set -euo pipefail

readonly HERE=$(cd "$(dirname "$0")" && pwd)
readonly RUN_DIR=${NODE_HEALTH_CLUSTER_RUN_DIR:-/run/node-health-cluster}
readonly READY_TIMEOUT=${NODE_HEALTH_CLUSTER_READY_TIMEOUT:-90}
readonly STOP_TIMEOUT=10

usage() {
  cat >&2 <<'EOF'
usage: cluster.sh up NAME [NODE]...       start a cluster; NODEs get credentials and a Node object
       cluster.sh env NAME                 print shell assignments: server, admin kubeconfig, CA, dirs
       cluster.sh node NAME NODE [--valid SECONDS]
                                           add a node (credentials + Node object)
       cluster.sh rotate NAME NODE [--valid SECONDS]
                                           issue a new kubelet client certificate and swap the
                                           kubelet-client-current.pem symlink as the kubelet does
       cluster.sh apiserver NAME stop|start
                                           stop or start only the API server (same port, same data)
       cluster.sh controller-manager NAME start|stop
                                           run kube-controller-manager against the cluster (built by
                                           setup: build.sh kube-controller-manager); start returns once
                                           its controllers work (the default ServiceAccount exists)
       cluster.sh scheduler NAME start|stop
                                           run kube-scheduler against the cluster (built by setup:
                                           build.sh kube-scheduler); it binds the pods that name no
                                           node, such as a DaemonSet's; start returns once it is ready
       cluster.sh kubectl NAME [ARG]...    kubectl as the admin (built on first use)
       cluster.sh status NAME              print PIDs, ports and paths
       cluster.sh down NAME                stop everything and remove the cluster's directory
       cluster.sh list                     names of the clusters that exist
NAME and NODE: lowercase letters, digits and '-' (a NODE becomes a Node name and a certificate CN).
EOF
  exit 2
}

die() {
  echo "cluster: $*" >&2
  exit 1
}

check_name() {
  [[ $1 =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] ||
    { echo "cluster: invalid name '$1': use 1-63 lowercase letters, digits and '-'" >&2; exit 2; }
}

check_host() {
  local tool
  for tool in openssl curl python3 flock; do
    command -v "$tool" >/dev/null || { echo "cluster: $tool not found: run scripts/setup.sh" >&2; exit 2; }
  done
}

# Start time of a process in clock ticks since boot: with the PID it names one process, so a recycled
# PID is never signalled.
proc_start() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # shellcheck disable=SC2086 # split the fields on purpose
  set -- $stat
  [[ $1 != Z ]] || return 1
  echo "${20}"
}

# Runs a command detached (own session, output to a log) and records "PID START" in a file.
spawn() {
  local pidfile=$1 log=$2
  shift 2
  setsid "$@" </dev/null >>"$log" 2>&1 &
  local pid=$!
  local start
  start=$(proc_start "$pid") || die "$1 exited at once; its log: $log"$'\n'"$(tail -n 20 "$log")"
  echo "$pid $start" >"$pidfile"
}

alive() {
  local pidfile=$1 pid start
  [[ -f $pidfile ]] || return 1
  read -r pid start <"$pidfile"
  [[ $(proc_start "$pid" 2>/dev/null) == "$start" ]]
}

# SIGTERM, then SIGKILL after STOP_TIMEOUT; only the process recorded in the file.
stop_process() {
  local pidfile=$1 pid start i
  [[ -f $pidfile ]] || return 0
  read -r pid start <"$pidfile"
  if [[ $(proc_start "$pid" 2>/dev/null) == "$start" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
      [[ $(proc_start "$pid" 2>/dev/null) == "$start" ]] || break
      sleep 0.1
    done
    if [[ $(proc_start "$pid" 2>/dev/null) == "$start" ]]; then
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        [[ $(proc_start "$pid" 2>/dev/null) == "$start" ]] || break
        sleep 0.1
      done
    fi
  fi
  rm -f "$pidfile"
}

free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
}

# ── PKI ──────────────────────────────────────────────────────────────────────────────────────────────
# EC P-256 keys (fast to make). Certificates are signed with `openssl ca` because only it takes exact
# start and end times, which lets a test make a client certificate that expires within seconds.

utc() { date -u -d "@$1" +%Y%m%d%H%M%SZ; }

init_pki() {
  local pki=$1
  mkdir -p "$pki/issued"
  : >"$pki/index.txt"
  cat >"$pki/ca.cnf" <<EOF
[ca]
default_ca = ca_default
[ca_default]
dir = $pki
database = \$dir/index.txt
new_certs_dir = \$dir/issued
certificate = \$dir/ca.crt
private_key = \$dir/ca.key
default_md = sha256
policy = policy_any
unique_subject = no
rand_serial = yes
[policy_any]
commonName = supplied
organizationName = optional
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, IP:10.96.0.1
EOF
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
    -subj "/CN=node-health-test-ca" -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  chmod 600 "$pki/ca.key"
}

# issue PKI KIND SUBJECT KEY_OUT CERT_OUT VALID_SECONDS: a key in SEC1 form (as the kubelet writes it)
# and a certificate signed by the cluster's CA.
issue() {
  local pki=$1 kind=$2 subject=$3 key=$4 cert=$5 valid=$6 now csr
  now=$(date +%s)
  csr=$(mktemp)
  openssl ecparam -name prime256v1 -genkey -noout -out "$key" 2>/dev/null
  chmod 600 "$key"
  openssl req -new -key "$key" -subj "$subject" -out "$csr" 2>/dev/null
  # Backdated a minute so clocks a little apart still accept it. -preserveDN keeps the subject in the
  # order given (O=system:nodes, CN=system:node:<name>, as the kubelet's are), not the policy's.
  openssl ca -batch -notext -preserveDN -config "$pki/ca.cnf" -extensions "$kind" -in "$csr" -out "$cert" \
    -startdate "$(utc $((now - 60)))" -enddate "$(utc $((now + valid)))" >/dev/null 2>"$csr.err" ||
    { cat "$csr.err" >&2; rm -f "$csr" "$csr.err"; die "openssl could not sign $subject"; }
  rm -f "$csr" "$csr.err"
}

b64() { base64 -w0 <"$1"; }

# ── the cluster ──────────────────────────────────────────────────────────────────────────────────────

cluster_dir() {
  check_name "$1"
  echo "$RUN_DIR/$1"
}

load_env() {
  local dir=$1
  [[ -f $dir/cluster.env ]] || die "no cluster '${dir##*/}' (start it with: cluster.sh up ${dir##*/})"
  # shellcheck disable=SC1091
  source "$dir/cluster.env"
}

admin_curl() {
  local dir=$1
  shift
  curl -sS --fail-with-body --max-time 30 --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" \
    --key "$dir/pki/admin.key" "$@"
}

start_apiserver() {
  local dir=$1 i code
  load_env "$dir"
  alive "$dir/apiserver.pid" && return 0
  local bin
  bin=$(bash "$HERE/build.sh") || die "could not build kube-apiserver"
  spawn "$dir/apiserver.pid" "$dir/apiserver.log" "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
    --cert-dir="$dir/pki" --tls-cert-file="$dir/pki/apiserver.crt" --tls-private-key-file="$dir/pki/apiserver.key" \
    --client-ca-file="$dir/pki/ca.crt" --token-auth-file="$dir/tokens.csv" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$dir/pki/sa.pub" --service-account-signing-key-file="$dir/pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 --endpoint-reconciler-type=none --profiling=false --v=1
  for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
    alive "$dir/apiserver.pid" ||
      die "kube-apiserver exited; the end of its log ($dir/apiserver.log):"$'\n'"$(tail -n 20 "$dir/apiserver.log")"
    code=$(admin_curl "$dir" -o /dev/null -w '%{http_code}' "$SERVER/readyz" 2>/dev/null || true)
    [[ $code == 200 ]] && return 0
    sleep 0.2
  done
  die "kube-apiserver not ready after ${READY_TIMEOUT}s; the end of its log ($dir/apiserver.log):"$'\n'"$(tail -n 20 "$dir/apiserver.log")"
}

# kube-controller-manager as the admin (system:masters), every controller on, no leader election and no
# port of its own: the disruption controller computes PodDisruptionBudget status, the DaemonSet and node
# lifecycle controllers act on real nodes (the VM ground's kubelet), the ServiceAccount controllers make
# the accounts pods are admitted with.
start_controller_manager() {
  local dir=$1 bin i
  load_env "$dir"
  alive "$dir/controller-manager.pid" && return 0
  bin=$(bash "$HERE/build.sh" --check kube-controller-manager) ||
    die "kube-controller-manager is not built: run scripts/setup.sh"
  spawn "$dir/controller-manager.pid" "$dir/controller-manager.log" "$bin/kube-controller-manager" \
    --kubeconfig="$dir/admin.kubeconfig" --use-service-account-credentials=false --leader-elect=false \
    --secure-port=0 --controllers='*' \
    --service-account-private-key-file="$dir/pki/sa.key" --root-ca-file="$dir/pki/ca.crt" \
    --cluster-signing-cert-file="$dir/pki/ca.crt" --cluster-signing-key-file="$dir/pki/ca.key" --v=1
  for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
    alive "$dir/controller-manager.pid" ||
      die "kube-controller-manager exited; the end of its log ($dir/controller-manager.log):"$'\n'"$(tail -n 20 "$dir/controller-manager.log")"
    admin_curl "$dir" -o /dev/null "$SERVER/api/v1/namespaces/default/serviceaccounts/default" 2>/dev/null && return 0
    sleep 0.2
  done
  die "kube-controller-manager made no ServiceAccount within ${READY_TIMEOUT}s; the end of its log ($dir/controller-manager.log):"$'\n'"$(tail -n 20 "$dir/controller-manager.log")"
}

# kube-scheduler as the admin, no leader election, its port on a free loopback port only for /readyz
# (always allowed; no lookup of the cluster's front-proxy CA, which this cluster does not have). The
# DaemonSet controller does not bind its pods (since Kubernetes 1.17): it gives each a node affinity for
# its node and leaves the binding to the scheduler.
start_scheduler() {
  local dir=$1 bin port i
  load_env "$dir"
  alive "$dir/scheduler.pid" && return 0
  bin=$(bash "$HERE/build.sh" --check kube-scheduler) || die "kube-scheduler is not built: run scripts/setup.sh"
  port=$(free_ports 1)
  spawn "$dir/scheduler.pid" "$dir/scheduler.log" "$bin/kube-scheduler" \
    --kubeconfig="$dir/admin.kubeconfig" --authentication-kubeconfig="$dir/admin.kubeconfig" \
    --authorization-kubeconfig="$dir/admin.kubeconfig" --authentication-skip-lookup --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="$port" --cert-dir="$dir/scheduler-certs" --v=1
  for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
    alive "$dir/scheduler.pid" ||
      die "kube-scheduler exited; the end of its log ($dir/scheduler.log):"$'\n'"$(tail -n 20 "$dir/scheduler.log")"
    [[ $(curl -sk --max-time 2 "https://127.0.0.1:$port/readyz" 2>/dev/null) == ok ]] && return 0
    sleep 0.2
  done
  die "kube-scheduler not ready within ${READY_TIMEOUT}s; the end of its log ($dir/scheduler.log):"$'\n'"$(tail -n 20 "$dir/scheduler.log")"
}

# The node's credentials under $dir/nodes/NODE as a kubeadm node has them at /: etc/kubernetes/kubelet.conf
# pointing at var/lib/kubelet/pki/kubelet-client-current.pem (certificate and key in one file, a symlink
# to a timestamped file). The kubeconfig names the pem by a path relative to itself, which resolves to
# the same file in this tree and on a node where the tree is copied to /.
write_node_credentials() {
  local dir=$1 node=$2 valid=$3 root=$dir/nodes/$2
  local pki=$root/var/lib/kubelet/pki stamp
  mkdir -p "$root/etc/kubernetes/pki" "$pki"
  cp "$dir/pki/ca.crt" "$root/etc/kubernetes/pki/ca.crt"
  stamp=$(date -u +%Y-%m-%d-%H-%M-%S)-$RANDOM
  local key cert
  key=$(mktemp) cert=$(mktemp)
  issue "$dir/pki" client "/O=system:nodes/CN=system:node:$node" "$key" "$cert" "$valid"
  (umask 077 && cat "$cert" "$key" >"$pki/kubelet-client-$stamp.pem")
  rm -f "$key" "$cert"
  # The kubelet's swap: point -updated at the new file, remove -current, rename -updated over it. For a
  # moment kubelet-client-current.pem does not exist; readers must re-read the path and retry.
  ln -sfn "kubelet-client-$stamp.pem" "$pki/kubelet-client-updated.pem"
  rm -f "$pki/kubelet-client-current.pem"
  mv -T "$pki/kubelet-client-updated.pem" "$pki/kubelet-client-current.pem"
  [[ -f $root/etc/kubernetes/kubelet.conf ]] && return 0
  cat >"$root/etc/kubernetes/kubelet.conf" <<EOF
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(b64 "$dir/pki/ca.crt")
    server: $SERVER
  name: default-cluster
contexts:
- context:
    cluster: default-cluster
    namespace: default
    user: default-auth
  name: default-context
current-context: default-context
kind: Config
preferences: {}
users:
- name: default-auth
  user:
    client-certificate: ../../var/lib/kubelet/pki/kubelet-client-current.pem
    client-key: ../../var/lib/kubelet/pki/kubelet-client-current.pem
EOF
  chmod 600 "$root/etc/kubernetes/kubelet.conf"
}

create_node_object() {
  local dir=$1 node=$2 out
  out=$(admin_curl "$dir" -X POST -H 'Content-Type: application/json' "$SERVER/api/v1/nodes" \
    -d "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"$node\",\"labels\":{\"kubernetes.io/hostname\":\"$node\",\"kubernetes.io/os\":\"linux\"}}}" 2>&1) ||
    [[ $out == *AlreadyExists* ]] || die "could not create Node $node: $out"
}

cmd_up() {
  [[ $# -ge 1 ]] || usage
  local name=$1 dir node i code
  shift
  for node in "$@"; do check_name "$node"; done
  dir=$(cluster_dir "$name")
  [[ ! -e $dir ]] || die "cluster '$name' exists ($dir): stop it with: cluster.sh down $name"
  local bin
  bin=$(bash "$HERE/build.sh") || die "could not build the cluster's binaries"
  mkdir -p "$dir"
  chmod 700 "$dir"
  # A failed start leaves nothing behind.
  trap 'cmd_down "$name" >/dev/null 2>&1 || true' EXIT
  local ports
  read -r -a ports <<<"$(free_ports 3)"
  cat >"$dir/cluster.env" <<EOF
NAME=$name
DIR=$dir
SERVER=https://127.0.0.1:${ports[0]}
APISERVER_PORT=${ports[0]}
ETCD_PORT=${ports[1]}
ETCD_PEER_PORT=${ports[2]}
EOF
  load_env "$dir"

  init_pki "$dir/pki"
  issue "$dir/pki" server "/CN=kube-apiserver" "$dir/pki/apiserver.key" "$dir/pki/apiserver.crt" $((7 * 86400))
  issue "$dir/pki" client "/O=system:masters/CN=node-health-test-admin" "$dir/pki/admin.key" "$dir/pki/admin.crt" $((7 * 86400))
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/pki/sa.key" 2>/dev/null
  openssl ec -in "$dir/pki/sa.key" -pubout -out "$dir/pki/sa.pub" 2>/dev/null
  # Static bearer tokens for the nodes named now, as an exec credential plugin would hand them out.
  : >"$dir/tokens.csv"
  for node in "$@"; do
    mkdir -p "$dir/nodes/$node"
    openssl rand -hex 24 >"$dir/nodes/$node/token"
    echo "$(cat "$dir/nodes/$node/token"),system:node:$node,node-$node,\"system:nodes\"" >>"$dir/tokens.csv"
  done
  chmod 600 "$dir/tokens.csv" "$dir"/nodes/*/token 2>/dev/null || true
  cat >"$dir/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: $SERVER
    certificate-authority: pki/ca.crt
users:
- name: admin
  user:
    client-certificate: pki/admin.crt
    client-key: pki/admin.key
contexts:
- name: admin
  context: {cluster: test, user: admin}
current-context: admin
EOF

  mkdir -p "$dir/etcd"
  spawn "$dir/etcd.pid" "$dir/etcd.log" "$bin/etcd" --name default --data-dir "$dir/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn --unsafe-no-fsync
  for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
    alive "$dir/etcd.pid" || die "etcd exited; the end of its log ($dir/etcd.log):"$'\n'"$(tail -n 20 "$dir/etcd.log")"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" || true)
    [[ $code == 200 ]] && break
    sleep 0.2
  done
  [[ $code == 200 ]] || die "etcd not healthy after ${READY_TIMEOUT}s ($dir/etcd.log)"

  start_apiserver "$dir"
  for node in "$@"; do
    write_node_credentials "$dir" "$node" $((7 * 86400))
    create_node_object "$dir" "$node"
  done
  trap - EXIT
  echo "$SERVER"
}

valid_arg() {
  if [[ $# -eq 0 ]]; then echo $((7 * 86400)); return; fi
  [[ $# -eq 2 && $1 == --valid && $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || usage
  echo "$2"
}

cmd_node() {
  [[ $# -ge 2 ]] || usage
  local dir node=$2 valid
  dir=$(cluster_dir "$1")
  check_name "$node"
  valid=$(valid_arg "${@:3}")
  load_env "$dir"
  exec 9>"$dir/pki.lock"
  flock 9
  write_node_credentials "$dir" "$node" "$valid"
  create_node_object "$dir" "$node"
  echo "$dir/nodes/$node"
}

cmd_rotate() {
  [[ $# -ge 2 ]] || usage
  local dir node=$2 valid
  dir=$(cluster_dir "$1")
  check_name "$node"
  valid=$(valid_arg "${@:3}")
  load_env "$dir"
  [[ -f $dir/nodes/$node/etc/kubernetes/kubelet.conf ]] || die "cluster '$1' has no node '$node'"
  exec 9>"$dir/pki.lock"
  flock 9
  write_node_credentials "$dir" "$node" "$valid"
  readlink "$dir/nodes/$node/var/lib/kubelet/pki/kubelet-client-current.pem"
}

cmd_apiserver() {
  [[ $# -eq 2 ]] || usage
  local dir
  dir=$(cluster_dir "$1")
  load_env "$dir"
  case $2 in
    stop) stop_process "$dir/apiserver.pid" ;;
    start) start_apiserver "$dir" ;;
    *) usage ;;
  esac
}

cmd_controller_manager() {
  [[ $# -eq 2 ]] || usage
  local dir
  dir=$(cluster_dir "$1")
  load_env "$dir"
  case $2 in
    start) start_controller_manager "$dir" ;;
    stop) stop_process "$dir/controller-manager.pid" ;;
    *) usage ;;
  esac
}

cmd_scheduler() {
  [[ $# -eq 2 ]] || usage
  local dir
  dir=$(cluster_dir "$1")
  load_env "$dir"
  case $2 in
    start) start_scheduler "$dir" ;;
    stop) stop_process "$dir/scheduler.pid" ;;
    *) usage ;;
  esac
}

cmd_env() {
  [[ $# -eq 1 ]] || usage
  local dir
  dir=$(cluster_dir "$1")
  load_env "$dir"
  printf 'NODE_HEALTH_CLUSTER_DIR=%q\n' "$dir"
  printf 'NODE_HEALTH_CLUSTER_SERVER=%q\n' "$SERVER"
  printf 'NODE_HEALTH_CLUSTER_CA=%q\n' "$dir/pki/ca.crt"
  printf 'NODE_HEALTH_CLUSTER_NODES=%q\n' "$dir/nodes"
  printf 'KUBECONFIG=%q\n' "$dir/admin.kubeconfig"
}

cmd_status() {
  [[ $# -eq 1 ]] || usage
  local dir p
  dir=$(cluster_dir "$1")
  load_env "$dir"
  echo "dir=$dir"
  echo "server=$SERVER"
  echo "etcd=http://127.0.0.1:$ETCD_PORT"
  for p in etcd apiserver controller-manager scheduler; do
    if alive "$dir/$p.pid"; then echo "$p.pid=$(cut -d' ' -f1 "$dir/$p.pid")"; else echo "$p.pid="; fi
  done
  [[ -d $dir/nodes ]] && for p in "$dir"/nodes/*/; do
    [[ -f $p/etc/kubernetes/kubelet.conf ]] && echo "node=$(basename "$p")"
  done
  return 0
}

cmd_kubectl() {
  [[ $# -ge 1 ]] || usage
  local dir bin
  dir=$(cluster_dir "$1")
  shift
  load_env "$dir"
  bin=$(bash "$HERE/build.sh" kubectl) || die "could not build kubectl"
  exec "$bin/kubectl" --kubeconfig "$dir/admin.kubeconfig" "$@"
}

cmd_down() {
  [[ $# -eq 1 ]] || usage
  local dir
  dir=$(cluster_dir "$1")
  [[ -d $dir ]] || return 0
  stop_process "$dir/scheduler.pid"
  stop_process "$dir/controller-manager.pid"
  stop_process "$dir/apiserver.pid"
  stop_process "$dir/etcd.pid"
  alive "$dir/scheduler.pid" || alive "$dir/controller-manager.pid" || alive "$dir/apiserver.pid" || alive "$dir/etcd.pid" &&
    die "could not stop the processes of '$1'"
  rm -rf "$dir"
}

cmd_list() {
  [[ -d $RUN_DIR ]] || return 0
  local d
  for d in "$RUN_DIR"/*/; do
    [[ -f $d/cluster.env ]] && basename "$d"
  done
  return 0
}

[[ $# -ge 1 ]] || usage
command=$1
shift
check_host
case $command in
  up) cmd_up "$@" ;;
  env) cmd_env "$@" ;;
  node) cmd_node "$@" ;;
  rotate) cmd_rotate "$@" ;;
  apiserver) cmd_apiserver "$@" ;;
  controller-manager) cmd_controller_manager "$@" ;;
  scheduler) cmd_scheduler "$@" ;;
  kubectl) cmd_kubectl "$@" ;;
  status) cmd_status "$@" ;;
  down) cmd_down "$@" ;;
  list) cmd_list "$@" ;;
  *) usage ;;
esac
