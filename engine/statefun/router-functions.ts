import { describeError, EddyError } from '../errors.js';
import type { Job, Router } from '../job.js';
import { encodeRoute, routeFailureCode, routesOf } from '../../operators/ingress-router.js';
import type { ServedBatch, ServedDeadLetter, StatefunHandler } from './handler.js';
import { type KafkaIngressDescription, kafkaIngressOf } from './kafka-descriptions.js';
import { type EgressMessage, encodeFromFunction, type FromFunctionInvocation, type InvocationBatchRequest, sfAddress, splitTypename, type TypedValue, typedValue, valueBytes } from './protocol.js';
import { messageTypenameOf, typenameOf } from './types.js';

/**
 * Behind StateFun, a job's routers run as functions. StateFun's Kafka ingress sends each record to
 * one function type, with the record's key as the id and its value as the argument (typed with the
 * topic's `valueType`); it cannot run TypeScript. So each topic of a Kafka ingress `in` is routed
 * (by the module.yaml `eddy statefun-module` writes) to the function `eddy.router.in/<topic>`, which
 * runs the ingress's routers on the record and sends the messages they route, as `eddy run` does.
 */
export const ROUTER_NAMESPACE_PREFIX = 'eddy.router.';

/** The function type that routes the records of `topic` read by Kafka ingress `ingress`. */
export function routerFunctionType(ingress: string, topic: string): string {
  return `${ROUTER_NAMESPACE_PREFIX}${ingress}/${topic}`;
}

export function isRouterFunctionType(type: string): boolean {
  return type.startsWith(ROUTER_NAMESPACE_PREFIX);
}

interface ServedIngress {
  readonly kafka: KafkaIngressDescription;
  readonly typename: string;
  readonly routers: readonly Router[];
}

/** Serves the router functions of a job's Kafka ingresses. Stateless: a batch sent twice gets the same answer. */
export class RouterFunctions {
  private readonly ingresses = new Map<string, ServedIngress>();

  constructor(
    private readonly job: Job,
    private readonly handler: Pick<StatefunHandler, 'deadLetter' | 'deadLetterEgress'>,
  ) {
    for (const ingress of job.ingresses) {
      const kafka = kafkaIngressOf(ingress);
      if (kafka !== undefined) this.ingresses.set(ingress.name, { kafka, typename: typenameOf(kafka.codec), routers: job.routers.get(ingress.name) ?? [] });
    }
  }

  /**
   * Runs the routers on each record of the batch, in order. A record they cannot route is a dead
   * letter (as in `eddy run`), and the rest of the batch goes on. Throws when `type` names no Kafka
   * ingress of the job: module.yaml does not fit the job.
   */
  serve(type: string, batch: InvocationBatchRequest): ServedBatch {
    const { namespace, name: topic } = splitTypename(type);
    const ingressName = namespace.slice(ROUTER_NAMESPACE_PREFIX.length);
    const ingress = this.ingresses.get(ingressName);
    if (ingress === undefined) {
      const kafka = [...this.ingresses.keys()];
      throw new EddyError(
        'EDDY_UNKNOWN_FUNCTION_TYPE',
        `StateFun called router function ${type}, but job ${this.job.name} has no Kafka ingress ${JSON.stringify(ingressName)} ` +
          `(${kafka.length === 0 ? 'it has none' : `it has ${kafka.join(', ')}`}); write module.yaml again with eddy statefun-module`,
      );
    }
    const key = batch.target?.id ?? '';
    const outgoingMessages: FromFunctionInvocation[] = [];
    const outgoingEgresses: EgressMessage[] = [];
    const deadLetters: ServedDeadLetter[] = [];
    let argument: TypedValue | null | undefined;
    const deadLetter = (code: ServedDeadLetter['code'], reason: string): void => {
      const letter = { code, reason, target: `${type}:${key}` };
      deadLetters.push(letter);
      this.handler.deadLetter(letter);
      // The record as it was, as the Kafka ingress of eddy run hands an unroutable one on.
      const bytes = valueBytes(argument);
      const record = { topic, partition: -1, offset: -1, timestamp: 0, key, headers: {}, valueBase64: Buffer.from(bytes).toString('base64') };
      const egress = this.handler.deadLetterEgress({ code, reason, ingress: ingressName, record });
      if (egress !== undefined) outgoingEgresses.push(egress);
    };
    for (const invocation of batch.invocations ?? []) {
      argument = invocation.argument;
      const typename = invocation.argument?.typename ?? '';
      if (typename !== ingress.typename) {
        deadLetter('EDDY_UNDECODABLE_PAYLOAD', `a record of topic ${topic} for ingress ${ingressName} has typename ${JSON.stringify(typename)}, but the ingress reads ${ingress.typename}; set valueType: ${ingress.typename} for the topic in module.yaml`);
        continue;
      }
      let value: unknown;
      try {
        value = ingress.kafka.codec.decode(valueBytes(invocation.argument));
      } catch (error) {
        deadLetter('EDDY_UNDECODABLE_PAYLOAD', `a record of topic ${topic} for ingress ${ingressName} is not valid ${ingress.kafka.codec.name}: ${describeError(error)}`);
        continue;
      }
      // A KafkaRecord (connectors/kafka-ingress.ts); StateFun passes on only the key and the value.
      const record = { topic, partition: -1, offset: -1, key, value, timestamp: 0, headers: {} };
      for (const router of ingress.routers) {
        let routes;
        try {
          routes = routesOf(router, record, ingressName);
        } catch (error) {
          deadLetter((error as EddyError).code, (error as EddyError).message);
          continue;
        }
        for (const route of Array.isArray(routes) ? routes : [routes]) {
          try {
            const payload = encodeRoute(this.job, ingressName, route);
            outgoingMessages.push({ target: sfAddress(route.to.type, route.to.id), argument: typedValue(messageTypenameOf(this.job.functions.get(route.to.type)), payload) });
          } catch (error) {
            deadLetter(routeFailureCode(error), describeError(error));
          }
        }
      }
    }
    const response = encodeFromFunction({
      invocationResult: { ...(outgoingMessages.length > 0 ? { outgoingMessages } : {}), ...(outgoingEgresses.length > 0 ? { outgoingEgresses } : {}) },
    });
    return { response, incomplete: false, invocations: batch.invocations?.length ?? 0, deadLetters };
  }
}
