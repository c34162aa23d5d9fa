import type { Codec } from '../codec.js';

/** A function type served elsewhere, over StateFun's remote-function protocol (see `remoteFunction`). */
export interface RemoteFunctionOptions<M> {
  /** The function type, `namespace/name`: the StateFun typename the endpoint serves. Required. */
  type: string;
  /** Where it is served, e.g. `http://127.0.0.1:8000/statefun`. Required. */
  url: string;
  /**
   * Codec of the messages sent to it, whose typename the endpoint sees: `stringType`, `intType`,
   * ... for the SDKs' built-in types, `jsonType('ns/Name')` for a JSON type of the SDK. Default: JSON
   * (`io.eddy.types/json`).
   */
  codec?: Codec<M>;
  /**
   * The names of the state values the function declares. The endpoint says which it needs (the
   * missing-state handshake); given, a name outside these is refused at once (a wrong URL, or a
   * version of the function this job was not written for). Default: whatever the endpoint asks for.
   */
  states?: readonly string[];
  /**
   * How long one request may take, retries with backoff included, before the attempt fails and the
   * job restores its last checkpoint (`EDDY_REMOTE_FUNCTION_FAILED`). Default: 60000 ms, StateFun's
   * own call timeout.
   */
  timeoutMs?: number;
  /**
   * Messages in one request at most: the one whose turn it is and those waiting for the same
   * instance behind it, as StateFun batches. Default: 100.
   */
  maxBatch?: number;
}
