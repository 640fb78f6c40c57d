// Service manager notification (Type=notify readiness, STATUS=, WATCHDOG=1) and the watchdog interval.
#include <systemd/sd-daemon.h>

#include "addon.h"

namespace nha {
namespace {

// notify(state: string): boolean — true when a notification socket was set and the message was sent.
Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "notify: state must be a string such as \"READY=1\"");
  }
  std::string state = info[0].As<Napi::String>().Utf8Value();
  // sd_notify takes a C string: an embedded NUL would silently cut the message short.
  if (state.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(env, "notify: state must not contain NUL characters");
  }
  int r = sd_notify(0, state.c_str());
  if (r < 0) {
    throw SystemError(env, "sd_notify to NOTIFY_SOCKET", r);
  }
  return Napi::Boolean::New(env, r > 0);
}

// watchdogUsec(): number — the service manager's watchdog interval in µs for this process, or 0 when
// the watchdog is off (or meant for another PID).
Napi::Value WatchdogUsec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t usec = 0;
  int r = sd_watchdog_enabled(0, &usec);
  if (r < 0) {
    throw SystemError(env, "sd_watchdog_enabled (check WATCHDOG_USEC and WATCHDOG_PID)", r);
  }
  return Napi::Number::New(env, r > 0 ? static_cast<double>(usec) : 0);
}

}  // namespace

void RegisterNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("notify", Napi::Function::New(env, Notify, "notify"));
  exports.Set("watchdogUsec", Napi::Function::New(env, WatchdogUsec, "watchdogUsec"));
}

}  // namespace nha
