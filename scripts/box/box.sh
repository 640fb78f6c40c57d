#!/usr/bin/env bash
# A node in a box: boots this host's own root filesystem, seen through an overlay so the host never
# changes, as a systemd machine with systemd-nspawn. The end-to-end tests install the agent's packages
# into boxes and drive them like real nodes. How it works and why: docs/testing.md.
set -euo pipefail

readonly RUN_DIR=${NODE_HEALTH_BOX_RUN_DIR:-/run/node-health-box}
readonly DATA_DIR=${NODE_HEALTH_BOX_DATA_DIR:-/var/tmp/node-health-box}
readonly BOOT_TIMEOUT=${NODE_HEALTH_BOX_BOOT_TIMEOUT:-60}
readonly STOP_TIMEOUT=${NODE_HEALTH_BOX_STOP_TIMEOUT:-20}
readonly CGROUP_PARENT=node-health-box
readonly BOX_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Units of the host image that must not run in a box: they would manage the shared network, listen on
# fixed ports of the shared network, or take the dpkg lock while a test installs a package.
readonly MASKED_UNITS=(
  systemd-networkd.service systemd-networkd.socket systemd-networkd-wait-online.service
  systemd-resolved.service NetworkManager.service networking.service dhcpcd.service
  ssh.service ssh.socket sshd.service postgresql.service postgresql@.service mysql.service
  mariadb.service nginx.service apache2.service exim4.service postfix.service
  apt-daily.timer apt-daily.service apt-daily-upgrade.timer apt-daily-upgrade.service
  unattended-upgrades.service man-db.timer dpkg-db-backup.timer e2scrub_all.timer
  e2scrub_reap.service fstrim.timer
)

usage() {
  cat >&2 <<'EOF'
usage: box.sh up NAME                     boot a box; prints its leader PID when systemd is up
       box.sh exec NAME [--setenv K=V]... -- CMD [ARG]...
                                          run CMD inside; its exit code is returned
       box.sh cp NAME SRC DEST            copy the file SRC into the box (DEST: path or directory)
       box.sh boot NAME                   boot a stopped box again on its own overlay (after a reboot
                                          or poweroff from inside); prints its leader PID
       box.sh down NAME                   power off and remove everything of the box
       box.sh status NAME                 print the box's leader, nspawn PID, root and cgroups
       box.sh list                        print the names of the boxes that exist
NAME: 1-63 lowercase letters, digits and '-', starting with a letter or digit; it becomes the hostname.
EOF
  exit 2
}

die() {
  echo "box: $*" >&2
  exit 1
}

check_name() {
  [[ $1 =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] ||
    { echo "box: invalid box name '$1': use 1-63 lowercase letters, digits and '-' (it becomes the hostname)" >&2; exit 2; }
}

check_host() {
  [[ $(id -u) -eq 0 ]] ||
    { echo "box: must run as root: a box mounts an overlay of / and creates cgroups" >&2; exit 2; }
  command -v systemd-nspawn >/dev/null ||
    { echo "box: systemd-nspawn not found: install systemd-container (apt-get install systemd-container)" >&2; exit 2; }
  command -v nsenter >/dev/null ||
    { echo "box: nsenter not found: install util-linux" >&2; exit 2; }
  [[ -x /usr/lib/systemd/systemd || -x /lib/systemd/systemd ]] ||
    { echo "box: this host has no systemd to boot in a box: install systemd" >&2; exit 2; }
}

# The cgroup hierarchies systemd uses on this host: name=systemd (v1) and/or the unified (v2) one.
cgroup_roots() {
  if [[ $(stat -f -c %T /sys/fs/cgroup) == cgroup2fs ]]; then
    echo /sys/fs/cgroup
    return
  fi
  [[ $(stat -f -c %T /sys/fs/cgroup/systemd 2>/dev/null) == cgroupfs ]] && echo /sys/fs/cgroup/systemd
  [[ $(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null) == cgroup2fs ]] && echo /sys/fs/cgroup/unified
  return 0
}

# Start time of a process (clock ticks since boot): together with the PID it names one process, so a
# recycled PID is never signalled.
proc_start() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # shellcheck disable=SC2086 # split the fields on purpose
  set -- $stat
  [[ $1 != Z ]] || return 1
  echo "${20}"
}

# Reads a "PID STARTTIME" file and prints the PID if that very process is still alive.
alive_pid() {
  local pid start
  [[ -f $1 ]] || return 1
  read -r pid start <"$1" || return 1
  [[ $(proc_start "$pid") == "$start" ]] || return 1
  echo "$pid"
}

record_pid() {
  local start
  start=$(proc_start "$1") || return 1
  echo "$1 $start" >"$2"
}

# The container's PID 1 as seen from the host: the child of systemd-nspawn that is PID 1 of its own
# PID namespace.
find_leader() {
  local child nspid
  for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    nspid=$(sed -n 's/^NSpid:[[:space:]]*//p' "/proc/$child/status" 2>/dev/null) || continue
    [[ $nspid =~ [[:space:]]1$ ]] && { echo "$child"; return 0; }
  done
  return 1
}

# The command line that runs a command inside the box whose PID 1 is $1, with a clean environment
# plus the "K=V" words in ENV_EXTRA; the command follows.
enter_argv() {
  ENTER=(nsenter --target "$1" --mount --uts --ipc --net --pid --cgroup --root --wd
    env -i PATH="$BOX_PATH" HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8
    TERM="${TERM:-dumb}" "${ENV_EXTRA[@]}")
}

box_nsenter() {
  enter_argv "$1"
  shift
  "${ENTER[@]}" "$@"
}

running_leader() {
  local state=$RUN_DIR/$1 leader
  alive_pid "$state/nspawn" >/dev/null || return 1
  leader=$(alive_pid "$state/leader") || return 1
  echo "$leader"
}

cmd_up() {
  [[ $# -eq 1 ]] || usage
  local name=$1
  check_name "$name"
  check_host
  local state=$RUN_DIR/$name
  mkdir -p "$RUN_DIR"
  mkdir "$state" 2>/dev/null || die "box $name already exists ($state): run 'box.sh down $name' first"
  trap "up_failed $name" EXIT
  trap 'exit 130' INT TERM

  mkdir -p "$DATA_DIR"
  [[ $DATA_DIR != *[[:space:]]* ]] || die "NODE_HEALTH_BOX_DATA_DIR must not contain spaces: $DATA_DIR"
  [[ $(stat -f -c %T "$DATA_DIR") != overlayfs ]] ||
    die "$DATA_DIR is on overlayfs, which cannot hold a box's upper dir: set NODE_HEALTH_BOX_DATA_DIR to a directory on a real filesystem"
  local data
  data=$(mktemp -d "$DATA_DIR/$name.XXXXXX")
  echo "$data" >"$state/data"
  mkdir "$data/upper" "$data/work" "$data/root"

  # The box's identity, written into the upper layer: its own hostname and machine ID.
  local machine_id unit
  machine_id=$(tr -d '-' </proc/sys/kernel/random/uuid)
  mkdir -p "$data/upper/etc/systemd/system" "$data/upper/var/lib/dbus"
  echo "$name" >"$data/upper/etc/hostname"
  echo "$machine_id" >"$data/upper/etc/machine-id"
  ln -s /etc/machine-id "$data/upper/var/lib/dbus/machine-id"
  for unit in "${MASKED_UNITS[@]}"; do
    ln -s /dev/null "$data/upper/etc/systemd/system/$unit"
  done
  mount -t overlay "nhbox-$name" -o "lowerdir=/,upperdir=$data/upper,workdir=$data/work" "$data/root"

  # A fresh cgroup of the box's own in every hierarchy systemd uses. nspawn (--keep-unit) places the
  # box's systemd in a "payload" child of the cgroup it is started in; started in the host's root
  # cgroup, that systemd would manage the host's root cgroup (there is no host systemd to give it a
  # delegated one).
  local roots root
  mapfile -t roots < <(cgroup_roots)
  [[ ${#roots[@]} -gt 0 ]] || die "no name=systemd or cgroup2 hierarchy is mounted under /sys/fs/cgroup"
  (
    flock 9
    for root in "${roots[@]}"; do
      [[ ! -e $root/$CGROUP_PARENT/$name ]] ||
        die "cgroup $root/$CGROUP_PARENT/$name is left from an earlier box $name: run 'box.sh down $name'"
      mkdir -p "$root/$CGROUP_PARENT/$name"
    done
  ) 9>"$RUN_DIR/.lock"

  launch "$name" "$data" "$machine_id"
  trap - EXIT INT TERM
  echo "$LEADER"
}

# Starts systemd-nspawn on the box's overlay from the box's own cgroups and waits until its systemd is
# up; sets LEADER. Used by `up` and by `boot`, which boots a stopped box again.
launch() {
  local name=$1 data=$2 machine_id=$3 state=$RUN_DIR/$1 roots root
  mapfile -t roots < <(cgroup_roots)
  (
    for root in "${roots[@]}"; do
      echo "$BASHPID" >"$root/$CGROUP_PARENT/$name/cgroup.procs"
    done
    export TERM=dumb # plain console log
    # nspawn filters @clock; adjtimex with modes 0 only reads the clock state (the agent's time_sync
    # probe), and without CAP_SYS_TIME in the box the kernel refuses any change through it.
    exec setsid systemd-nspawn --boot --directory="$data/root" --machine="$name" --uuid="$machine_id" \
      --keep-unit --register=no --console=read-only --link-journal=no --system-call-filter=adjtimex \
      </dev/null >>"$state/console.log" 2>&1
  ) &
  local nspawn=$!
  disown "$nspawn" # its end is reported by the box, not by this shell
  record_pid "$nspawn" "$state/nspawn" || boot_failed "$name" "systemd-nspawn exited at once"

  local deadline=$((SECONDS + BOOT_TIMEOUT)) leader="" status=""
  while [[ -z $leader ]]; do
    alive_pid "$state/nspawn" >/dev/null || boot_failed "$name" "systemd-nspawn exited"
    ((SECONDS < deadline)) || boot_failed "$name" "no systemd started within ${BOOT_TIMEOUT} s"
    leader=$(find_leader "$nspawn") && [[ $(cat "/proc/$leader/comm" 2>/dev/null) == systemd ]] || leader=""
    [[ -n $leader ]] || sleep 0.05
  done
  record_pid "$leader" "$state/leader" || boot_failed "$name" "the box's systemd exited"

  ENV_EXTRA=()
  while :; do
    status=$(box_nsenter "$leader" systemctl is-system-running 2>/dev/null) || true
    case $status in
      running) break ;;
      degraded)
        echo "box: $name is degraded; failed units: $(box_nsenter "$leader" systemctl list-units --failed --plain --no-legend | awk '{print $1}' | paste -sd ' ')" >&2
        break ;;
    esac
    alive_pid "$state/leader" >/dev/null || boot_failed "$name" "the box's systemd exited"
    ((SECONDS < deadline)) || boot_failed "$name" "systemd did not finish booting within ${BOOT_TIMEOUT} s (state: ${status:-unknown})"
    sleep 0.1
  done
  LEADER=$leader
}

# A reboot from inside ends systemd-nspawn (exit status 133: "Container NAME is being rebooted." on the
# console); a poweroff ends it too. The box's overlay, identity and cgroups stay until `down`: boot
# them again, as the machine's firmware would.
cmd_boot() {
  [[ $# -eq 1 ]] || usage
  local name=$1
  check_name "$name"
  check_host
  local state=$RUN_DIR/$name data
  [[ -f $state/data ]] || die "no box $name (create one with 'box.sh up $name')"
  running_leader "$name" >/dev/null && die "box $name is running; 'boot' starts a box whose systemd has stopped"
  alive_pid "$state/nspawn" >/dev/null && die "box $name is still shutting down (systemd-nspawn is running); wait until it has stopped"
  data=$(cat "$state/data")
  awk -v d="$data/root" '$2 == d { found = 1 } END { exit !found }' /proc/mounts ||
    die "the overlay of box $name is not mounted at $data/root; remove the box with 'box.sh down $name'"
  local roots root procs
  mapfile -t roots < <(cgroup_roots)
  for root in "${roots[@]}"; do
    [[ -d $root/$CGROUP_PARENT/$name ]] || die "cgroup $root/$CGROUP_PARENT/$name of box $name is gone; remove the box with 'box.sh down $name'"
    procs=$(find "$root/$CGROUP_PARENT/$name" -name cgroup.procs -exec cat {} + 2>/dev/null)
    [[ -z $procs ]] || die "processes $(echo $procs) of the last boot of box $name are still in $root/$CGROUP_PARENT/$name; remove the box with 'box.sh down $name'"
  done
  echo "box: booting $name again on its own overlay" >>"$state/console.log"
  launch "$name" "$data" "$(cat "$data/upper/etc/machine-id")"
  echo "$LEADER"
}

boot_failed() {
  local name=$1 log=$RUN_DIR/$1/console.log
  if [[ -s $log ]]; then
    echo "box: $name did not boot: $2; last console lines:" >&2
    tail -n 25 "$log" | tr -d '\r' | sed 's/^/  | /' >&2
  else
    echo "box: $name did not boot: $2 (its console printed nothing)" >&2
  fi
  exit 1
}

# EXIT trap of `up`: a box that did not come up is removed entirely.
up_failed() {
  local code=$?
  trap - EXIT
  teardown "$1" kill || true
  exit "$code"
}

cmd_down() {
  [[ $# -eq 1 ]] || usage
  check_name "$1"
  check_host
  teardown "$1" poweroff
}

# Removes everything of box $1. $2 = poweroff: shut the box down cleanly first (a box that never came
# up is killed instead: its systemd may not handle signals yet); kill: kill it at once.
teardown() {
  local name=$1 mode=$2 state=$RUN_DIR/$1 nspawn leader i
  if nspawn=$(alive_pid "$state/nspawn"); then
    if [[ $mode == poweroff ]] && leader=$(alive_pid "$state/leader"); then
      # SIGRTMIN+4 asks the box's systemd for poweroff.target; nspawn exits once the box is down.
      kill -s RTMIN+4 "$leader" 2>/dev/null || true
      for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        alive_pid "$state/nspawn" >/dev/null || break
        sleep 0.1
      done
      alive_pid "$state/nspawn" >/dev/null && echo "box: $name did not power off within ${STOP_TIMEOUT} s; killing it" >&2
    fi
    if alive_pid "$state/nspawn" >/dev/null; then
      # Killing PID 1 of the box's PID namespace kills every process in it; nspawn then exits.
      leader=$(alive_pid "$state/leader") || leader=$(find_leader "$nspawn") || leader=""
      [[ -z $leader ]] || kill -s KILL "$leader" 2>/dev/null || true
      kill -s KILL "$nspawn" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        alive_pid "$state/nspawn" >/dev/null || break
        sleep 0.1
      done
    fi
  fi

  # Whatever is still in the box's cgroups belongs to the box.
  local roots root cg procs
  mapfile -t roots < <(cgroup_roots)
  for root in "${roots[@]}"; do
    cg=$root/$CGROUP_PARENT/$name
    [[ -d $cg ]] || continue
    for ((i = 0; i < 50; i++)); do
      procs=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
      [[ -n $procs ]] || break
      # shellcheck disable=SC2086 # one PID per word
      kill -s KILL $procs 2>/dev/null || true
      sleep 0.1
    done
    [[ -z $procs ]] || die "processes $(echo $procs) of box $name are still in $cg and could not be killed"
  done

  # Unmount the root overlay, and never remove a directory that still has something mounted in it.
  local data=""
  [[ -f $state/data ]] && data=$(cat "$state/data")
  if [[ -n $data ]]; then
    if awk -v d="$data/root" '$2 == d { found = 1 } END { exit !found }' /proc/mounts; then
      umount "$data/root" || die "cannot unmount $data/root of box $name: see 'fuser -vm $data/root'"
    fi
    if awk -v d="$data/" 'index($2, d) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
      die "something is still mounted under $data (box $name): unmount it, then run 'box.sh down $name' again"
    fi
    rm -rf --one-file-system "$data"
  fi

  for root in "${roots[@]}"; do
    cg=$root/$CGROUP_PARENT/$name
    [[ -d $cg ]] && { find "$cg" -depth -type d -exec rmdir {} + || die "cannot remove cgroup $cg of box $name"; }
  done
  if [[ -d $RUN_DIR ]]; then
    (
      flock 9
      for root in "${roots[@]}"; do
        rmdir "$root/$CGROUP_PARENT" 2>/dev/null || true
      done
    ) 9>"$RUN_DIR/.lock"
  fi
  rm -rf "$state"
}

cmd_exec() {
  [[ $# -ge 1 ]] || usage
  local name=$1
  shift
  check_name "$name"
  ENV_EXTRA=()
  while [[ $# -gt 0 ]]; do
    case $1 in
      --setenv | -E)
        [[ $# -ge 2 ]] || usage
        ENV_EXTRA+=("$2")
        shift 2 ;;
      --setenv=*)
        ENV_EXTRA+=("${1#--setenv=}")
        shift ;;
      --)
        shift
        break ;;
      *) usage ;;
    esac
  done
  [[ $# -gt 0 ]] || usage
  local kv
  for kv in "${ENV_EXTRA[@]}"; do
    [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || { echo "box: --setenv takes NAME=VALUE, got '$kv'" >&2; exit 125; }
  done
  [[ $(id -u) -eq 0 ]] || { echo "box: must run as root to enter a box" >&2; exit 125; }
  local leader
  leader=$(running_leader "$name") || { echo "box: box $name is not running (start it with 'box.sh up $name')" >&2; exit 125; }
  enter_argv "$leader"
  exec "${ENTER[@]}" "$@"
}

cmd_cp() {
  [[ $# -eq 3 ]] || usage
  local name=$1 src=$2 dest=$3
  check_name "$name"
  check_host
  [[ -e $src ]] || die "cp: $src does not exist"
  [[ -f $src ]] || die "cp: $src is not a regular file (cp copies one file; pipe a tar stream into 'box.sh exec $name -- tar -x' for a tree)"
  local leader mode
  leader=$(running_leader "$name") || die "box $name is not running (start it with 'box.sh up $name')"
  mode=$(stat -c %a "$src")
  ENV_EXTRA=()
  # A shell inside writes the file, so DEST may be on the box's own /tmp or /run.
  box_nsenter "$leader" sh -c '
    d=$1
    [ -d "$d" ] && d="${d%/}/$2"
    { cat >"$d" && chmod "$3" "$d"; } 2>/dev/null || { echo "box: cp: cannot write $d in box $4" >&2; exit 1; }
  ' sh "$dest" "$(basename "$src")" "$mode" "$name" <"$src"
}

cmd_status() {
  [[ $# -eq 1 ]] || usage
  local name=$1 leader root
  check_name "$name"
  leader=$(running_leader "$name") || die "box $name is not running"
  echo "name=$name"
  echo "leader=$leader"
  echo "nspawn=$(alive_pid "$RUN_DIR/$name/nspawn")"
  echo "root=$(cat "$RUN_DIR/$name/data")/root"
  echo "console=$RUN_DIR/$name/console.log"
  for root in $(cgroup_roots); do
    echo "cgroup=$root/$CGROUP_PARENT/$name"
  done
}

cmd_list() {
  [[ $# -eq 0 ]] || usage
  [[ -d $RUN_DIR ]] || return 0
  find "$RUN_DIR" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort
}

[[ $# -ge 1 ]] || usage
command=$1
shift
case $command in
  up) cmd_up "$@" ;;
  boot) cmd_boot "$@" ;;
  down) cmd_down "$@" ;;
  exec) cmd_exec "$@" ;;
  cp) cmd_cp "$@" ;;
  status) cmd_status "$@" ;;
  list) cmd_list "$@" ;;
  *) usage ;;
esac
