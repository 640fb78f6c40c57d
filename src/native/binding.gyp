# The agent's native addon: N-API only, so one build serves every Node version the packages bundle.
# Built by scripts/build-native.sh against the bundled runtime's headers.
{
  'targets': [
    {
      'target_name': 'node_health_native',
      'sources': ['addon.cc', 'notify.cc', 'journal_send.cc', 'journal_reader.cc', 'timex.cc', 'memory.cc'],
      'dependencies': ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      'defines': ['NAPI_VERSION=8'],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '<!@(pkg-config --cflags libsystemd)'],
      'libraries': ['<!@(pkg-config --libs libsystemd)'],
    },
  ],
}
