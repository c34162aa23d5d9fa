import type { Address } from '../engine/function-type.js';

/**
 * The in-memory key of a function instance (mailboxes, holds, locks, running transactions): type and
 * id joined by NUL, which no function type contains (validateFunctionTypeName allows letters, digits,
 * `_ . - /` only), so two addresses never share a key. Not the keyed-state layout: that is state-keys.ts.
 */
export function addressKey(type: string, id: string): string {
  return `${type}\u0000${id}`;
}

export function keyOfAddress(address: Address): string {
  return addressKey(address.type, address.id);
}
