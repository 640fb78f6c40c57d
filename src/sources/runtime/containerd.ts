// containerd over gRPC on its unix socket: its own Version service (answered by the daemon's main
// loop, the call gardener-node-agent uses) and the CRI the kubelet uses (RuntimeReady, NetworkReady,
// image listing). Every call carries a deadline, so a hung daemon — socket accepting, nothing
// answering — shows up as a timeout instead of a probe that never returns.
import { Client, credentials, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import {
  decode,
  EMPTY_REQUEST,
  ListImagesResponse,
  StatusResponse,
  VersionResponse,
  type Decoded,
  type MessageSpec,
} from './messages';

export const VERSION_METHOD = '/containerd.services.version.v1.Version/Version';
export const STATUS_METHOD = '/runtime.v1.RuntimeService/Status';
export const LIST_IMAGES_METHOD = '/runtime.v1.ImageService/ListImages';

export interface RuntimeConditionValue {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

/** A failed call: `code` is the gRPC status (DEADLINE_EXCEEDED, UNAVAILABLE, UNIMPLEMENTED, …). */
export class RuntimeCallError extends Error {
  override name = 'RuntimeCallError';
  constructor(
    readonly method: string,
    readonly code: GrpcStatus,
    readonly detail: string,
    readonly elapsedMs: number,
  ) {
    super(`${method}: ${GrpcStatus[code] ?? code}: ${detail}`);
  }

  get timedOut(): boolean {
    return this.code === GrpcStatus.DEADLINE_EXCEEDED;
  }
}

export class ContainerdClient {
  private readonly client: Client;

  constructor(readonly socket: string) {
    this.client = new Client(`unix:${socket}`, credentials.createInsecure(), {
      // After containerd restarts, reconnect at the next call instead of backing off for up to 2 minutes
      // (grpc-js's default), which would report a healthy daemon as unreachable.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.enable_retries': 0,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
  }

  async version(timeoutMs: number): Promise<Decoded<typeof VersionResponse>> {
    return this.call(VERSION_METHOD, VersionResponse, timeoutMs);
  }

  /** The CRI runtime conditions (RuntimeReady, NetworkReady). */
  async runtimeConditions(timeoutMs: number): Promise<RuntimeConditionValue[]> {
    const reply = await this.call(STATUS_METHOD, StatusResponse, timeoutMs);
    return reply.status.conditions;
  }

  /** The images the CRI lists (ID and size); the call's latency is what the slow-runtime warning measures. */
  async listImages(timeoutMs: number): Promise<Array<{ id: string; size: bigint }>> {
    const reply = await this.call(LIST_IMAGES_METHOD, ListImagesResponse, timeoutMs);
    return reply.images;
  }

  close(): void {
    this.client.close();
  }

  private call<M extends MessageSpec>(method: string, spec: M, timeoutMs: number): Promise<Decoded<M>> {
    const started = performance.now();
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        method,
        (request: Buffer) => request,
        (reply: Buffer) => decode(spec, reply),
        EMPTY_REQUEST,
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err: ServiceError | null, reply?: Decoded<M>) => {
          const elapsed = performance.now() - started;
          if (err || reply === undefined) {
            reject(new RuntimeCallError(method, err?.code ?? GrpcStatus.INTERNAL, err?.details ?? 'no reply', elapsed));
          } else {
            resolve(reply);
          }
        },
      );
    });
  }
}
