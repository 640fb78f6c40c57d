#!/bin/bash
# The guest side of the VM ground's command channel (runs in the VM as nha-guest-agent.service).
# Reads one request a line from the virtio-serial port nha.cmd and answers each with one line:
#   request:  ID TIMEOUT_S SCRIPT_B64 STDIN_B64      (a bash script; '-' for no stdin)
#   response: ID EXIT_CODE STDOUT_B64 STDERR_B64     ('-' for empty; 124 when TIMEOUT_S ran out)
# Requests run concurrently; the host matches answers by ID. The host's directory shared over 9p
# (tag nha.share) is mounted at /mnt/host for files too big for a line.
set -u
readonly port=/dev/virtio-ports/nha.cmd
readonly work=/run/nha-guest-agent
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

mkdir -p "$work" /mnt/host
if ! mountpoint -q /mnt/host; then
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 nha.share /mnt/host 2>/dev/null || true
fi
for _ in $(seq 100); do [[ -e $port ]] && break; sleep 0.1; done
exec 3<>"$port" || exit 1
# A FIFO nobody writes to: `read -t` on it waits without forking a sleep (costly under TCG).
rm -f "$work/idle" && mkfifo "$work/idle" && exec 4<>"$work/idle"

b64() { if [[ -s $1 ]]; then base64 -w0 <"$1"; else printf -- -; fi; }

handle() {
  local id=$1 timeout=$2 script=$3 input=$4 dir="$work/$1" code
  mkdir -p "$dir"
  if [[ $input == - ]]; then : >"$dir/in"; else printf %s "$input" | base64 -d >"$dir/in"; fi
  printf %s "$script" | base64 -d >"$dir/script"
  (cd / && exec timeout -k 5 "$timeout" bash "$dir/script" <"$dir/in" >"$dir/out" 2>"$dir/err")
  code=$?
  # One write a reply at a time: answers of concurrent requests must not interleave on the port.
  {
    flock 9
    printf '%s %s %s %s\n' "$id" "$code" "$(b64 "$dir/out")" "$(b64 "$dir/err")" >&3
  } 9>"$work/.lock"
  rm -rf "$dir"
}

while :; do
  # read returns at once with nothing while no host is connected to the port: poll gently.
  if ! IFS=' ' read -r id timeout script input <&3; then
    read -r -t 0.1 -u 4 _ || true
    continue
  fi
  [[ $id =~ ^[0-9a-f]{1,32}$ && $timeout =~ ^[0-9]+$ && -n ${input:-} ]] || continue
  handle "$id" "$timeout" "$script" "$input" &
done
