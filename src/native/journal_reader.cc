// Reading the journal with sd-journal: open (system journal, a directory or files), filter with matches,
// seek, read entries straight into JS objects, and wake up through uv_poll on sd-journal's inotify fd.
// The policy (where to start, when to read, fallbacks) lives in src/sources/journal/reader.ts.
#include <systemd/sd-journal.h>
#include <uv.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "addon.h"

namespace nha {
namespace {

constexpr char kMessage[] = "MESSAGE=";
constexpr size_t kMessageLen = sizeof(kMessage) - 1;
// Four string-table indices per entry in a Uint16Array: a batch stays well below 65536 distinct values.
constexpr double kMaxBatch = 10000;

// The short fields (identifier, unit, transport, boot ID) go to JS as indices into a table of the
// distinct values of one read() call: most batches hold a handful, so each is made a JS string once.
class Interner {
 public:
  Interner() { values_.emplace_back(); }

  // `field` (0-3) remembers its last value: consecutive entries mostly repeat it.
  uint16_t Index(int field, const char* data, size_t len) {
    uint16_t last = last_[field];
    const std::string& l = values_[last];
    if (l.size() == len && std::memcmp(l.data(), data, len) == 0) return last;
    std::string value(data, len);
    auto it = index_.find(value);
    uint16_t i;
    if (it != index_.end()) {
      i = it->second;
    } else {
      i = static_cast<uint16_t>(values_.size());
      values_.push_back(value);
      index_.emplace(std::move(value), i);
    }
    last_[field] = i;
    return i;
  }

  const std::vector<std::string>& Values() const { return values_; }

 private:
  std::vector<std::string> values_;  // [0] is ''
  std::unordered_map<std::string, uint16_t> index_;
  uint16_t last_[4] = {0, 0, 0, 0};
};

bool StartsWith(const char* data, size_t len, const char* prefix, size_t prefix_len) {
  return len >= prefix_len && std::memcmp(data, prefix, prefix_len) == 0;
}

// How many bytes of `p` to keep so that at most `max` are kept and no UTF-8 sequence is cut in two.
size_t Utf8Cut(const char* p, size_t max) {
  size_t keep = max;
  // A continuation byte (10xxxxxx) at the cut means the character before it is incomplete; a sequence
  // is at most 4 bytes, so backing up 3 is enough (more would only happen in bytes that are not UTF-8).
  for (int i = 0; i < 3 && keep > 0 && (static_cast<unsigned char>(p[keep]) & 0xC0) == 0x80; i++) keep--;
  return keep;
}

class Journal : public Napi::ObjectWrap<Journal> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Journal",
                       {
                           InstanceMethod<&Journal::SeekCursor>("seekCursor"),
                           InstanceMethod<&Journal::SeekRealtime>("seekRealtime"),
                           InstanceMethod<&Journal::SeekTail>("seekTail"),
                           InstanceMethod<&Journal::Read>("read"),
                           InstanceMethod<&Journal::Cursor>("cursor"),
                           InstanceMethod<&Journal::Fd>("fd"),
                           InstanceMethod<&Journal::Process>("process"),
                           InstanceMethod<&Journal::TimeoutUsec>("timeoutUsec"),
                           InstanceMethod<&Journal::Watch>("watch"),
                           InstanceMethod<&Journal::Unwatch>("unwatch"),
                           InstanceMethod<&Journal::Close>("close"),
                       });
  }

  // new Journal({ directory?, files?, matches, maxMessageBytes })
  explicit Journal(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Journal>(info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsObject()) {
      throw Napi::TypeError::New(env, "Journal: expected { directory?, files?, matches, maxMessageBytes }");
    }
    Napi::Object opts = info[0].As<Napi::Object>();
    Napi::Value max = opts.Get("maxMessageBytes");
    if (!max.IsNumber() || max.As<Napi::Number>().DoubleValue() < 1) {
      throw Napi::TypeError::New(env, "Journal: maxMessageBytes must be a number of bytes above 0");
    }
    max_message_ = static_cast<size_t>(max.As<Napi::Number>().DoubleValue());

    Napi::Value files = opts.Get("files");
    Napi::Value directory = opts.Get("directory");
    int r;
    std::string what;
    if (files.IsArray()) {
      Napi::Array list = files.As<Napi::Array>();
      std::vector<std::string> paths;
      for (uint32_t i = 0; i < list.Length(); i++) paths.push_back(list.Get(i).ToString().Utf8Value());
      std::vector<const char*> argv;
      for (const std::string& p : paths) argv.push_back(p.c_str());
      argv.push_back(nullptr);
      what = "sd_journal_open_files";
      for (const std::string& p : paths) what += " " + p;
      r = sd_journal_open_files(&j_, argv.data(), 0);
    } else if (directory.IsString()) {
      std::string dir = directory.As<Napi::String>().Utf8Value();
      what = "sd_journal_open_directory " + dir;
      r = sd_journal_open_directory(&j_, dir.c_str(), 0);
    } else {
      // The local machine's system journal (system services and the kernel, not users' journals).
      what = "sd_journal_open (the system journal)";
      r = sd_journal_open(&j_, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
    }
    if (r < 0) {
      j_ = nullptr;
      throw SystemError(env, what, r);
    }
    // A compressed field needs to be decompressed only this far (one byte over the limit tells that it
    // was longer); an uncompressed one is never copied whole anyway, only the kept part is.
    r = sd_journal_set_data_threshold(j_, kMessageLen + max_message_ + 1);
    if (r < 0) throw SystemError(env, "sd_journal_set_data_threshold", r);
    AddMatches(env, opts.Get("matches"));
    // Installs the inotify watches now, before the first read, so nothing written in between is missed.
    // A failure (inotify exhausted) is not fatal here: the caller asks fd() and falls back to polling.
    sd_journal_get_fd(j_);

  }

  ~Journal() override { CloseAll(); }

 private:
  // matches: Array<Record<string, string>> — groups OR-ed, fields within a group AND-ed. An empty group
  // matches everything, so it makes the whole filter empty.
  void AddMatches(Napi::Env env, Napi::Value value) {
    if (!value.IsArray()) throw Napi::TypeError::New(env, "Journal: matches must be an array of { FIELD: value } objects");
    Napi::Array groups = value.As<Napi::Array>();
    for (uint32_t g = 0; g < groups.Length(); g++) {
      Napi::Value gv = groups.Get(g);
      if (!gv.IsObject() || gv.IsArray()) throw Napi::TypeError::New(env, "Journal: each match must be an object of FIELD: value");
      if (gv.As<Napi::Object>().GetPropertyNames().Length() == 0) {
        sd_journal_flush_matches(j_);
        return;
      }
    }
    for (uint32_t g = 0; g < groups.Length(); g++) {
      Napi::Object group = groups.Get(g).As<Napi::Object>();
      Napi::Array names = group.GetPropertyNames();
      if (g > 0) {
        int r = sd_journal_add_disjunction(j_);
        if (r < 0) throw SystemError(env, "sd_journal_add_disjunction", r);
      }
      for (uint32_t i = 0; i < names.Length(); i++) {
        std::string name = names.Get(i).ToString().Utf8Value();
        std::string match = name + "=" + group.Get(name).ToString().Utf8Value();
        int r = sd_journal_add_match(j_, match.data(), match.size());
        if (r < 0) throw SystemError(env, "journal match " + name + " (sd_journal_add_match)", r);
      }
    }
  }

  sd_journal* Open(Napi::Env env) {
    if (j_ == nullptr) throw Napi::Error::New(env, "journal is closed");
    return j_;
  }

  // seekCursor(cursor): boolean — positions so that the next read starts after the entry at `cursor`;
  // false when the cursor cannot be parsed (the position is then unchanged).
  Napi::Value SeekCursor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    sd_journal* j = Open(env);
    std::string cursor = info[0].ToString().Utf8Value();
    int r = sd_journal_seek_cursor(j, cursor.c_str());
    if (r == -EINVAL) return Napi::Boolean::New(env, false);
    if (r < 0) throw SystemError(env, "sd_journal_seek_cursor", r);
    // The seek lands on the cursor's entry when it still exists, else on the first one after it: the
    // first entry read is checked against the cursor and dropped if it is the one already delivered.
    skip_cursor_ = cursor;
    check_skip_ = true;
    return Napi::Boolean::New(env, true);
  }

  // seekRealtime(usec): the next read starts at the first entry at or after `usec` (CLOCK_REALTIME µs).
  Napi::Value SeekRealtime(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    sd_journal* j = Open(env);
    double usec = info[0].As<Napi::Number>().DoubleValue();
    int r = sd_journal_seek_realtime_usec(j, usec <= 0 ? 0 : static_cast<uint64_t>(usec));
    if (r < 0) throw SystemError(env, "sd_journal_seek_realtime_usec", r);
    check_skip_ = false;
    return env.Undefined();
  }

  // seekTail(): string | null — the next read starts after the newest (matching) entry now in the journal;
  // returns that entry's cursor, or null when there is none (then everything written later is read).
  Napi::Value SeekTail(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    sd_journal* j = Open(env);
    int r = sd_journal_seek_tail(j);
    if (r < 0) throw SystemError(env, "sd_journal_seek_tail", r);
    check_skip_ = false;
    // The tail is a position past every entry: next() from there never finds later ones, so step back
    // onto the last entry. With none, start from the head instead.
    r = sd_journal_previous(j);
    if (r < 0) throw SystemError(env, "sd_journal_previous", r);
    if (r == 0) {
      r = sd_journal_seek_head(j);
      if (r < 0) throw SystemError(env, "sd_journal_seek_head", r);
      return env.Null();
    }
    return CursorValue(env, j);
  }

  Napi::Value CursorValue(Napi::Env env, sd_journal* j) {
    char* cursor = nullptr;
    int r = sd_journal_get_cursor(j, &cursor);
    if (r < 0) throw SystemError(env, "sd_journal_get_cursor", r);
    Napi::String s = Napi::String::New(env, cursor);
    std::free(cursor);
    return s;
  }

  // read(max): { count, messages, realtimeUs, fields, strings, unreadable } — up to `max` entries after the
  // current position, fewer at the end. Columns rather than one object per entry: building objects
  // through N-API costs about as much as reading the journal, while JS builds them from columns in a
  // fraction of that (docs/journal.md has the figures).
  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    sd_journal* j = Open(env);
    double max_d = info[0].As<Napi::Number>().DoubleValue();
    if (!(max_d >= 1 && max_d <= kMaxBatch)) {
      throw Napi::RangeError::New(env, "read: max must be between 1 and " + std::to_string(kMaxBatch));
    }
    uint32_t max = static_cast<uint32_t>(max_d);

    napi_value messages;
    NAPI_THROW_IF_FAILED(env, napi_create_array_with_length(env, max, &messages), Napi::Value());
    Napi::Float64Array realtimes = Napi::Float64Array::New(env, max);
    Napi::Uint16Array fields = Napi::Uint16Array::New(env, static_cast<size_t>(max) * 4);
    double* rt = realtimes.Data();
    uint16_t* fx = fields.Data();
    Interner strings;
    napi_value empty;
    NAPI_THROW_IF_FAILED(env, napi_create_string_utf8(env, "", 0, &empty), Napi::Value());

    uint32_t n = 0;
    uint32_t unreadable = 0;
    while (n < max) {
      int r = sd_journal_next(j);
      if (r < 0) throw SystemError(env, "sd_journal_next", r);
      if (r == 0) break;
      if (check_skip_) {
        check_skip_ = false;
        if (sd_journal_test_cursor(j, skip_cursor_.c_str()) > 0) continue;
      }
      uint64_t realtime = 0;
      if (sd_journal_get_realtime_usec(j, &realtime) < 0) {
        // An entry whose header cannot be read is skipped (and counted); the next one may be fine.
        unreadable++;
        continue;
      }
      rt[n] = static_cast<double>(realtime);
      uint16_t* f = fx + static_cast<size_t>(n) * 4;
      napi_value message = nullptr;
      bool recount = false;
      const void* data;
      size_t len;
      // One pass over the entry's fields: cheaper than a sd_journal_get_data() per field, each of
      // which walks the fields from the start. Fields that cannot be read are skipped by sd-journal.
      sd_journal_restart_data(j);
      while (sd_journal_enumerate_available_data(j, &data, &len) > 0) {
        const char* d = static_cast<const char*>(data);
        switch (d[0]) {
          case 'M':
            if (message == nullptr && !recount && StartsWith(d, len, kMessage, kMessageLen)) {
              // Exactly one byte over may be a longer message the threshold cut short: its true
              // length is looked up below, once the enumeration is done.
              if (len - kMessageLen == max_message_ + 1) recount = true;
              else message = MessageValue(env, d + kMessageLen, len - kMessageLen);
            }
            break;
          case 'S':
            if (StartsWith(d, len, "SYSLOG_IDENTIFIER=", 18)) f[0] = strings.Index(0, d + 18, len - 18);
            break;
          case '_':
            if (StartsWith(d, len, "_SYSTEMD_UNIT=", 14)) f[1] = strings.Index(1, d + 14, len - 14);
            else if (StartsWith(d, len, "_TRANSPORT=", 11)) f[2] = strings.Index(2, d + 11, len - 11);
            else if (StartsWith(d, len, "_BOOT_ID=", 9)) f[3] = strings.Index(3, d + 9, len - 9);
            break;
        }
      }
      if (recount) message = WholeMessageValue(env, j);
      NAPI_THROW_IF_FAILED(env, napi_set_element(env, messages, n, message != nullptr ? message : empty), Napi::Value());
      n++;
      positioned_ = true;
    }

    const std::vector<std::string>& values = strings.Values();
    Napi::Array table = Napi::Array::New(env, values.size());
    for (uint32_t i = 0; i < values.size(); i++) table.Set(i, Napi::String::New(env, values[i]));
    Napi::Object out = Napi::Object::New(env);
    out.Set("count", Napi::Number::New(env, n));
    out.Set("messages", Napi::Value(env, messages));
    out.Set("realtimeUs", realtimes);
    out.Set("fields", fields);
    out.Set("strings", table);
    out.Set("unreadable", Napi::Number::New(env, unreadable));
    return out;
  }

  // MESSAGE read again without the threshold, so the marker can say how much was cut. Only for messages
  // that came back exactly one byte over the limit: rare, and the one case where the length is unsure.
  napi_value WholeMessageValue(Napi::Env env, sd_journal* j) {
    const void* data;
    size_t len;
    sd_journal_set_data_threshold(j, 0);
    int r = sd_journal_get_data(j, "MESSAGE", &data, &len);
    sd_journal_set_data_threshold(j, kMessageLen + max_message_ + 1);
    if (r < 0) throw SystemError(env, "sd_journal_get_data MESSAGE", r);
    return MessageValue(env, static_cast<const char*>(data) + kMessageLen, len - kMessageLen);
  }

  // MESSAGE as a JS string: invalid UTF-8 becomes U+FFFD (V8's decoder), longer than the limit is cut at
  // a character boundary and marked.
  napi_value MessageValue(Napi::Env env, const char* p, size_t len) {
    napi_value v = nullptr;
    if (len <= max_message_) {
      NAPI_THROW_IF_FAILED(env, napi_create_string_utf8(env, p, len, &v), nullptr);
      return v;
    }
    size_t keep = Utf8Cut(p, max_message_);
    std::string s(p, keep);
    s += "\xE2\x80\xA6[truncated " + std::to_string(len - keep) + " bytes]";
    NAPI_THROW_IF_FAILED(env, napi_create_string_utf8(env, s.data(), s.size(), &v), nullptr);
    return v;
  }

  // cursor(): string | null — the cursor of the entry read last, null before any.
  Napi::Value Cursor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    sd_journal* j = Open(env);
    if (!positioned_) return env.Null();
    return CursorValue(env, j);
  }

  // fd(): number — sd-journal's inotify fd; throws (with errno) when inotify cannot be set up.
  Napi::Value Fd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = sd_journal_get_fd(Open(env));
    if (fd < 0) throw SystemError(env, "sd_journal_get_fd (inotify)", fd);
    return Napi::Number::New(env, fd);
  }

  // process(): number — sd_journal_process: 0 nothing new, 1 entries appended, 2 files added or removed.
  Napi::Value Process(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int r = sd_journal_process(Open(env));
    if (r < 0) throw SystemError(env, "sd_journal_process", r);
    return Napi::Number::New(env, r);
  }

  // timeoutUsec(): number — when sd-journal must be processed even without an event (CLOCK_MONOTONIC µs,
  // journals on network file systems), or -1 for never.
  Napi::Value TimeoutUsec(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t usec = 0;
    int r = sd_journal_get_timeout(Open(env), &usec);
    if (r < 0) throw SystemError(env, "sd_journal_get_timeout", r);
    return Napi::Number::New(env, usec == UINT64_MAX ? -1 : static_cast<double>(usec));
  }

  // watch(onChange): calls onChange(sd_journal_process() result, or a negative errno) each time the
  // inotify fd becomes readable. Processing happens here, before JS runs: it drains the fd, so the
  // level-triggered poll does not fire again for the same events.
  Napi::Value Watch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    sd_journal* j = Open(env);
    if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "watch: onChange must be a function");
    if (poll_ != nullptr) throw Napi::Error::New(env, "watch: already watching");
    int fd = sd_journal_get_fd(j);
    if (fd < 0) throw SystemError(env, "sd_journal_get_fd (inotify)", fd);
    uv_loop_t* loop = nullptr;
    NAPI_THROW_IF_FAILED(env, napi_get_uv_event_loop(env, &loop), Napi::Value());
    auto poll = std::make_unique<uv_poll_t>();
    int r = uv_poll_init(loop, poll.get(), fd);
    if (r < 0) throw Napi::Error::New(env, std::string("uv_poll_init on the journal's inotify fd: ") + uv_strerror(r));
    poll->data = this;
    r = uv_poll_start(poll.get(), UV_READABLE, OnReadable);
    if (r < 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(poll.release()), FreePoll);
      throw Napi::Error::New(env, std::string("uv_poll_start on the journal's inotify fd: ") + uv_strerror(r));
    }
    poll_ = poll.release();
    on_change_ = Napi::Persistent(info[0].As<Napi::Function>());
    // Kept alive while watching: the poll handle points at this object.
    self_ = Napi::Persistent(Value());
    async_ = std::make_unique<Napi::AsyncContext>(env, "JournalWatch");
    return env.Undefined();
  }

  static void FreePoll(uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); }

  static void OnReadable(uv_poll_t* h, int status, int /*events*/) {
    Journal* self = static_cast<Journal*>(h->data);
    if (self->j_ == nullptr) return;
    int r = status < 0 ? status : sd_journal_process(self->j_);
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    try {
      self->on_change_.MakeCallback(env.Global(), {Napi::Number::New(env, r)}, *self->async_);
    } catch (const Napi::Error& e) {
      // No JS frame above a libuv callback: hand the exception to the process's uncaught handler.
      napi_fatal_exception(env, e.Value());
    }
  }

  void StopWatching() {
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), FreePoll);
      poll_ = nullptr;
    }
    if (!on_change_.IsEmpty()) on_change_.Reset();
    async_.reset();
    if (!self_.IsEmpty()) self_.Reset();
  }

  Napi::Value Unwatch(const Napi::CallbackInfo& info) {
    StopWatching();
    return info.Env().Undefined();
  }

  void CloseAll() {
    StopWatching();
    if (j_ != nullptr) {
      sd_journal_close(j_);
      j_ = nullptr;
    }
  }

  // close(): stops watching and closes the journal and its files and inotify fd; safe to repeat.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseAll();
    return info.Env().Undefined();
  }

  sd_journal* j_ = nullptr;
  size_t max_message_ = 0;
  std::string skip_cursor_;
  bool check_skip_ = false;
  bool positioned_ = false;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference on_change_;
  Napi::ObjectReference self_;
  std::unique_ptr<Napi::AsyncContext> async_;
};

// journalProbe(path): number — 0 when sd-journal can open the file, else the errno it failed with
// (EBADMSG, EPROTONOSUPPORT, ENODATA... for a corrupt or foreign file).
Napi::Value JournalProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "journalProbe: path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  const char* paths[] = {path.c_str(), nullptr};
  sd_journal* j = nullptr;
  int r = sd_journal_open_files(&j, paths, 0);
  if (r < 0) return Napi::Number::New(env, -r);
  sd_journal_close(j);
  return Napi::Number::New(env, 0);
}

}  // namespace

void RegisterJournalReader(Napi::Env env, Napi::Object exports) {
  exports.Set("Journal", Journal::Define(env));
  exports.Set("journalProbe", Napi::Function::New(env, JournalProbe, "journalProbe"));
}

}  // namespace nha
