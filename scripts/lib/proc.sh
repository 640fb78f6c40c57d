# Shared by the test-ground scripts (sourced, not run).

# Start time of a process in clock ticks since boot: with the PID it names one process, so a recycled
# PID is never signalled. Fails for a process that is gone or a zombie.
proc_start() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # shellcheck disable=SC2086 # split the fields on purpose
  set -- $stat
  [[ $1 != Z ]] || return 1
  echo "${20}"
}
