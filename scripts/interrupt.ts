import type { TestRegistry } from '../test/support/registry.js';

/** Stops the registry (and removes its files) when the run is interrupted; returns the undo. */
export function stopOnInterrupt(reg: TestRegistry): () => void {
  const stop = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: stopping the registry\n`);
    void reg.stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  };
}
