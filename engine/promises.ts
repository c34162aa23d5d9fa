/** Whether a handler or a reader returned a promise (it went async) or a plain value. */
export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}
