#!/usr/bin/env bash
# The VM ground: a Debian 12 guest with its own kernel under qemu (TCG), for the tests that need a real
# kernel — cgroup v2, kernel lines in the journal, OOM kills, hung tasks. Each VM boots a throwaway qcow2
# overlay of the cached image (build-image.sh); commands run through the guest agent over virtio-serial
# (channel.mjs), never over the guest's network. How it works and why: docs/testing.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

readonly RUN_DIR=${NODE_HEALTH_VM_RUN_DIR:-/run/node-health-vm}
readonly BOOT_TIMEOUT=${NODE_HEALTH_VM_BOOT_TIMEOUT:-300}
readonly STOP_TIMEOUT=${NODE_HEALTH_VM_STOP_TIMEOUT:-20}
# The address in the guest's network that reaches the forwarded host port (vm.sh up --forward).
readonly FORWARD_ADDR=10.0.2.100

usage() {
  cat >&2 <<'EOF2'
usage: vm.sh up NAME [--arch amd64|arm64] [--forward PORT] [--memory MB] [--cpus N]
                                     boot a VM; returns when its systemd reports running (or degraded).
                                     --arch: the guest's architecture (default amd64; arm64 under
                                     qemu-system-aarch64, a guest without the kubelet)
                                     --forward: the guest's 10.0.2.100:PORT reaches 127.0.0.1:PORT on the host
       vm.sh exec NAME [--timeout S] -- CMD [ARG]...
                                     run CMD in the VM as root; its exit code is returned (125: not run)
       vm.sh cp NAME SRC DEST        copy the host file SRC into the VM (DEST: path or directory)
       vm.sh down NAME               stop the VM and remove its overlay and state
       vm.sh status NAME             print the VM's qemu PID, run directory, console log and socket
       vm.sh list                    print the names of the VMs that exist
NAME: 1-63 lowercase letters, digits and '-', starting with a letter or digit.
EOF2
  exit 2
}

die() {
  echo "vm: $*" >&2
  exit 1
}

check_name() {
  [[ $1 =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] ||
    { echo "vm: invalid VM name '$1': use 1-63 lowercase letters, digits and '-'" >&2; exit 2; }
}

# The tools a command needs; `up` names its architecture's qemu (TOOL:PACKAGE) first.
check_host() {
  [[ $(id -u) -eq 0 ]] || { echo "vm: must run as root (the image keeps root-owned files)" >&2; exit 2; }
  local tool pkg
  for tool in "$@" qemu-img:qemu-utils mmdebstrap:mmdebstrap node:nodejs; do
    pkg=${tool#*:}
    command -v "${tool%%:*}" >/dev/null ||
      { echo "vm: ${tool%%:*} not found: run scripts/setup.sh (apt-get install $pkg)" >&2; exit 2; }
  done
}

# The qemu of a VM, by the PID it wrote; only while that PID still runs qemu for this VM's directory
# (a recycled PID is never signalled).
qemu_pid() {
  local dir=$RUN_DIR/$1 pid
  pid=$(cat "$dir/qemu.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/overlay.qcow2" || return 1
  echo "$pid"
}

cmd_down() {
  local name=$1 dir=$RUN_DIR/$1 pid i
  if pid=$(qemu_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    ! kill -0 "$pid" 2>/dev/null || die "$name: qemu (PID $pid) did not stop"
  fi
  rm -rf "$dir"
}

# Runs a bash script in the VM through the guest agent; the exit code is the script's.
channel() {
  local name=$1 timeout=$2 script=$3
  [[ -S $RUN_DIR/$name/cmd.sock ]] || { echo "vm: no VM named '$name' is running" >&2; return 125; }
  node "$here/channel.mjs" "$RUN_DIR/$name/cmd.sock" "$timeout" "$script"
}

cmd_up() {
  local name=$1
  shift
  local arch=amd64 forward='' memory=2048 cpus=2
  while [[ $# -gt 0 ]]; do
    case $1 in
      --arch) [[ ${2:-} == amd64 || ${2:-} == arm64 ]] || die "--arch needs amd64 or arm64"; arch=$2; shift 2 ;;
      --forward) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--forward needs a port number"; forward=$2; shift 2 ;;
      --memory) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--memory needs a size in MB"; memory=$2; shift 2 ;;
      --cpus) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--cpus needs a number"; cpus=$2; shift 2 ;;
      *) usage ;;
    esac
  done
  # The machine of each architecture: a PC (q35) with its 16550 serial, or Arm's virt board with its
  # PL011; the same virtio devices on PCI for both.
  local qemu machine cpu console
  case $arch in
    amd64) qemu=qemu-system-x86_64 machine=q35 cpu=max console=ttyS0 ;;
    # pauth-impdef: TCG's pointer authentication with QEMU's cheap hash instead of the architected
    # QARMA, which the kernel's return-address signing makes a large share of the guest's time.
    arm64) qemu=qemu-system-aarch64 machine=virt cpu=max,pauth-impdef=on console=ttyAMA0 ;;
  esac
  check_host "$qemu:qemu-system-$([[ $arch == amd64 ]] && echo x86 || echo arm)"
  local dir=$RUN_DIR/$name image started
  [[ ! -e $dir ]] || die "a VM named '$name' exists already (vm.sh down $name)"
  image=$(bash "$here/build-image.sh" "$arch") || die "the image could not be built"
  mkdir -p "$dir/share"
  # A VM that does not come up is removed again, whatever stopped it.
  trap 'cmd_down "$name" >/dev/null 2>&1 || true' EXIT
  qemu-img create -q -f qcow2 -F raw -b "$image/rootfs.img" "$dir/overlay.qcow2"
  local net="user,id=net0,restrict=on"
  # A forward runs forward.mjs for each connection; qemu splits its options at commas.
  if [[ -n $forward ]]; then
    [[ $here != *,* ]] || die "cannot forward: the path $here contains a comma"
    net+=",guestfwd=tcp:$FORWARD_ADDR:$forward-cmd:$(command -v node) $here/forward.mjs $forward"
  fi
  started=$(date +%s%N)
  # KVM cannot run a stock kernel on every host (a paravirtual /dev/kvm lacks vmx/svm); TCG always can.
  "$qemu" -name "nha-$name" -nodefaults -no-user-config -display none \
    -machine "$machine" -accel tcg,thread=multi -cpu "$cpu" -smp "$cpus" -m "$memory" \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=$console loglevel=4 systemd.unified_cgroup_hierarchy=1 net.ifnames=0" \
    -drive "file=$dir/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe,discard=unmap" \
    -device virtio-serial-pci \
    -chardev "socket,id=cmd,path=$dir/cmd.sock,server=on,wait=off" \
    -device virtserialport,chardev=cmd,name=nha.cmd \
    -virtfs "local,path=$dir/share,mount_tag=nha.share,security_model=none,id=share" \
    -netdev "$net" -device virtio-net-pci,netdev=net0 \
    -serial "file:$dir/console.log" -monitor none \
    -pidfile "$dir/qemu.pid" -daemonize 2>"$dir/qemu.err" ||
    die "$name: qemu did not start: $(cat "$dir/qemu.err")"
  local state
  state=$(channel "$name" "$BOOT_TIMEOUT" 'systemctl is-system-running --wait') || true
  if [[ $state != running && $state != degraded ]]; then
    echo "vm: $name did not come up within ${BOOT_TIMEOUT} s (state '${state}'); console:" >&2
    tail -40 "$dir/console.log" >&2 || true
    exit 1
  fi
  echo "boot_ms=$((($(date +%s%N) - started) / 1000000))" >"$dir/boot"
  trap - EXIT
  qemu_pid "$name"
}

cmd_exec() {
  local name=$1 timeout=600
  shift
  while [[ $# -gt 0 && $1 != -- ]]; do
    case $1 in
      --timeout) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--timeout needs seconds"; timeout=$2; shift 2 ;;
      *) usage ;;
    esac
  done
  [[ ${1:-} == -- && $# -ge 2 ]] || usage
  shift
  local script
  script=$(printf '%q ' "$@")
  channel "$name" "$timeout" "exec $script"
}

cmd_cp() {
  local vm=$1 src=$2 dest=$3 dir=$RUN_DIR/$1
  [[ -f $src ]] || die "cp: $src is not a file"
  [[ -d $dir/share ]] || die "no VM named '$vm' is running"
  # Staged under its own name, so a DEST directory gets the file's name.
  local staged file
  staged=$(mktemp -d "$dir/share/cp.XXXXXX")
  file=$(basename "$src")
  cp "$src" "$staged/$file"
  local rc=0
  channel "$vm" 300 "cp --preserve=mode $(printf %q "/mnt/host/${staged##*/}/$file") $(printf %q "$dest")" || rc=$?
  rm -rf "$staged"
  [[ $rc -eq 0 ]] || die "cp: copying $src to $dest in $vm failed (exit $rc)"
}

cmd_status() {
  local name=$1 dir=$RUN_DIR/$1 pid
  pid=$(qemu_pid "$name") || die "no VM named '$name' is running"
  echo "pid=$pid"
  echo "dir=$dir"
  echo "console=$dir/console.log"
  echo "socket=$dir/cmd.sock"
  cat "$dir/boot" 2>/dev/null || true
}

[[ $# -ge 1 ]] || usage
command=$1
shift
case $command in
  list) [[ -d $RUN_DIR ]] && ls -1 "$RUN_DIR"; exit 0 ;;
  # up checks the host once it knows the architecture.
  up) [[ $# -ge 1 ]] || usage; check_name "$1" ;;
  exec | cp | down | status) [[ $# -ge 1 ]] || usage; check_name "$1"; check_host ;;
  *) usage ;;
esac
case $command in
  up) cmd_up "$@" ;;
  exec) cmd_exec "$@" ;;
  cp) [[ $# -eq 3 ]] || usage; cmd_cp "$@" ;;
  down) [[ $# -eq 1 ]] || usage; cmd_down "$1" ;;
  status) [[ $# -eq 1 ]] || usage; cmd_status "$1" ;;
esac
