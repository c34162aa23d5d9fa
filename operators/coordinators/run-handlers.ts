import type { FunctionType, StateSpecs } from '../../engine/function-type.js';
import { isPromise } from '../../engine/promises.js';
import type { Invocation } from '../invocation.js';

/** How running handlers ended: undefined if every one succeeded, else what the failing one threw. */
export type HandlerOutcome = { readonly error: unknown } | undefined;

/**
 * Runs `fn`'s handler for each message in order on one invocation, so later ones see the staged
 * writes of earlier ones; stops at the first that throws. Synchronous unless a handler goes async.
 */
export function runHandlers(fn: FunctionType<unknown, StateSpecs>, invocation: Invocation, messages: readonly unknown[]): HandlerOutcome | Promise<HandlerOutcome> {
  let next = 0;
  const runFrom = (): HandlerOutcome | Promise<HandlerOutcome> => {
    while (next < messages.length) {
      let result: void | Promise<void>;
      try {
        result = fn.handler(invocation, messages[next++]);
      } catch (error) {
        return { error };
      }
      if (isPromise(result)) return result.then(runFrom, (error: unknown) => ({ error }));
    }
    return undefined;
  };
  return runFrom();
}
