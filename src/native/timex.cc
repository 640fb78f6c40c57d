// The kernel's clock discipline state, read with adjtimex(2) — the only place it is exposed (no file in
// /proc or /sys holds it). NTP daemons (chronyd, ntpd, systemd-timesyncd) write this state; we only read.
#include <sys/syscall.h>
#include <sys/timex.h>
#include <unistd.h>

#include <cerrno>

#include "addon.h"

namespace nha {
namespace {

// adjtimex(): { state, status, offsetNs, frequencyPpm, maxErrorUs, estErrorUs, constant, tickUs, taiS }.
// modes = 0 makes the call read-only: the kernel changes nothing and needs no CAP_SYS_TIME.
Napi::Value Adjtimex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 0) {
    throw Napi::TypeError::New(env, "adjtimex: takes no arguments (it only reads the clock state)");
  }
  struct timex tx = {};
  tx.modes = 0;
  // The system call itself, not glibc's adjtimex(), which issues clock_adjtime(CLOCK_REALTIME): a
  // service's seccomp allow-list then needs exactly one entry, "adjtimex".
  int state = static_cast<int>(syscall(SYS_adjtimex, &tx));
  if (state < 0) {
    // EPERM here means a seccomp filter (systemd's ProtectClock=, SystemCallFilter=) denies the call.
    throw SystemError(env, "adjtimex (read-only, modes 0)", -errno);
  }
  // offset is in µs unless the last writer asked for ns (STA_NANO); callers always get ns.
  double offset_ns = static_cast<double>(tx.offset) * ((tx.status & STA_NANO) ? 1 : 1000);
  Napi::Object out = Napi::Object::New(env);
  out.Set("state", Napi::Number::New(env, state));
  out.Set("status", Napi::Number::New(env, tx.status));
  out.Set("offsetNs", Napi::Number::New(env, offset_ns));
  // freq is ppm with a 16-bit binary fraction.
  out.Set("frequencyPpm", Napi::Number::New(env, static_cast<double>(tx.freq) / 65536.0));
  out.Set("maxErrorUs", Napi::Number::New(env, static_cast<double>(tx.maxerror)));
  out.Set("estErrorUs", Napi::Number::New(env, static_cast<double>(tx.esterror)));
  out.Set("constant", Napi::Number::New(env, static_cast<double>(tx.constant)));
  out.Set("tickUs", Napi::Number::New(env, static_cast<double>(tx.tick)));
  out.Set("taiS", Napi::Number::New(env, tx.tai));
  return out;
}

}  // namespace

void RegisterTimex(Napi::Env env, Napi::Object exports) {
  exports.Set("adjtimex", Napi::Function::New(env, Adjtimex, "adjtimex"));
}

}  // namespace nha
