// Turns the transport's envelopes into plain answers: failures throw ApiError with the host's code and diagnostics.
import { ApiError, EVENT_CHANNELS, eventMethodName, REQUEST_CHANNELS } from '../../shared/ipc/contract.ts';
import type { Api, Envelope, WireApi } from '../../shared/ipc/contract.ts';

export function unwrap(wire: WireApi): Api {
  const api: Record<string, unknown> = {};
  for (const channel of REQUEST_CHANNELS) {
    const call = wire[channel] as (req: unknown) => Promise<Envelope<unknown>>;
    api[channel] = async (req: unknown): Promise<unknown> => {
      const envelope = await call(req);
      if (envelope.ok) return envelope.value;
      throw new ApiError(envelope.error);
    };
  }
  for (const event of EVENT_CHANNELS) {
    const name = eventMethodName(event);
    api[name] = wire[name];
  }
  return api as Api;
}
