/**
 * The bus conformance suite on `StreamBus` over `MemoryStreamStore` (the embedded bus).
 */
import { MemoryStreamStore } from '../../src/oona/memory-stream-store.js';
import { StreamBus } from '../../src/oona/stream-bus.js';
import { describeBusConformance } from './bus.conformance.js';

describeBusConformance('StreamBus on MemoryStreamStore', async (options) => {
  const store = new MemoryStreamStore();
  const bus = new StreamBus({ ...options, store });
  return {
    bus,
    store,
    dispose: async () => {
      await bus.close();
      await store.close();
    },
  };
});
