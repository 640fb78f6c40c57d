// Errors of the Kubernetes output. Each has a stable code callers branch on and a one-line message that
// names the file, server or object and says what to do.

export type KubeErrorCode =
  /** None of the kubeconfig paths exists (yet: the kubelet writes it when it joins). */
  | 'KUBECONFIG_NOT_FOUND'
  /** The kubeconfig cannot be read or parsed, or asks for something the agent refuses. */
  | 'KUBECONFIG_INVALID'
  /** The kubeconfig, its directory or its exec plugin could have been written by someone but root. */
  | 'KUBECONFIG_INSECURE'
  /** A certificate, key, CA or token file the kubeconfig names cannot be read or used. */
  | 'CREDENTIALS_UNREADABLE'
  /** The exec credential plugin failed or printed something that is not an ExecCredential. */
  | 'EXEC_PLUGIN_FAILED'
  /** The node name could not be determined or is not a valid Node name. */
  | 'NODE_NAME_INVALID'
  /** No connection: refused, DNS, timeout, reset. */
  | 'UNREACHABLE'
  /** The server's certificate did not verify against the CA, or the TLS handshake failed. */
  | 'TLS'
  /** The API server answered with an error status. */
  | 'API';

export class KubeError extends Error {
  constructor(
    readonly code: KubeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KubeError';
  }
}

/** An error status from the API server, with the parts of its Status object worth branching on. */
export class KubeApiError extends KubeError {
  constructor(
    /** HTTP status code. */
    readonly status: number,
    /** metav1.Status reason, e.g. "Forbidden", "NotFound", "Conflict"; "" when the body was not a Status. */
    readonly reason: string,
    /** The server's own message. */
    readonly serverMessage: string,
    message: string,
    /** Seconds the server asked us to wait (Retry-After), if it did. */
    readonly retryAfterSeconds?: number,
  ) {
    super('API', message);
    this.name = 'KubeApiError';
  }
}
