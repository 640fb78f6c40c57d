import { AgentError } from '../../src/errors';

/** The AgentError `fn` throws; any other outcome fails the test. */
export function errorOf(fn: () => unknown): AgentError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AgentError) return err;
    throw err;
  }
  throw new Error('expected an AgentError');
}
