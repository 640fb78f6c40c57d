// Shared pieces of the Kubernetes tests: a logger that records what was logged, and the [kubernetes]
// defaults with overrides.
import { loadAgentConfig } from '../../src/sections';
import type { LogFields, Logger } from '../../src/types';
import type { KubernetesConfig } from '../../src/outputs/kubernetes/reporter';

export interface Entry {
  level: string;
  message: string;
  fields: LogFields;
}

export interface RecordingLogger extends Logger {
  entries: Entry[];
  /** Messages at `level` (all levels when omitted) that match `re`. */
  matching(re: RegExp, level?: string): Entry[];
}

export function recordingLogger(): RecordingLogger {
  const entries: Entry[] = [];
  const at = (level: string) => (message: string, fields: LogFields = {}) => {
    entries.push({ level, message, fields });
  };
  return {
    entries,
    error: at('error'),
    warning: at('warning'),
    info: at('info'),
    debug: at('debug'),
    setLevel: () => undefined,
    close: () => undefined,
    matching: (re, level) => entries.filter((e) => re.test(e.message) && (level === undefined || e.level === level)),
  };
}

/** The shipped defaults of [kubernetes] with `overrides` applied. */
export function kubernetesConfig(overrides: Partial<KubernetesConfig>): KubernetesConfig {
  return { ...loadAgentConfig('/nonexistent/node-health').config.kubernetes, ...overrides };
}
