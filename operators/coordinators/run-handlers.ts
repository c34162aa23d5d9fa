import type { FunctionType, StateSpecs } from '../../engine/function-type.js';
import { isPromise } from '../../engine/promises.js';
import type { Invocation } from '../invocation.js';

/** How running handlers ended: undefined if every one succeeded, else what the failing one threw. */
export type HandlerOutcome = { readonly error: unknown } | undefined;

/**
 * Runs `fn`'s handler for each message in order on one invocation, so later ones see the staged
 * writes of earlier ones; stops at the first that throws. Synchronous unless a handler goes async.
 */
export function runHandlers(fn: FunctionType<unknown, StateSpecs>, invocation: Invocation, messages: readonly unknown[], from = 0): HandlerOutcome | Promise<HandlerOutcome> {
  // No closure per call: the common case (synchronous handlers) runs hot, once per transaction leg.
  for (let next = from; next < messages.length; next++) {
    let result: void | Promise<void>;
    try {
      result = fn.handler(invocation, messages[next]);
    } catch (error) {
      return { error };
    }
    if (isPromise(result)) {
      return result.then(
        () => runHandlers(fn, invocation, messages, next + 1),
        (error: unknown) => ({ error }),
      );
    }
  }
  return undefined;
}
