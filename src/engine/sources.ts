// The plan's sources as they run (every kind of the registry, src/registry.ts, through the contract's
// PlannedSource and RunningSource): opened, started once declared, replaced on reload, stopped, shown.
import type { PlannedSource, RunningSource, SourceEnv, SourcesStatus } from '../types';
import { background } from '../system/background';

export class RunningSources {
  private readonly running = new Map<string, { planned: PlannedSource; source: RunningSource }>();

  /**
   * Makes `planned` (by kind name, in the registry's order) the sources that run. One planned as before
   * (read at start only, kept by the plan) runs on; the others are stopped in the background, and the
   * new ones opened. Returns the opened ones' start: call it once their declarations are in the
   * condition table (and, at start, the saved state is restored).
   */
  async replace(planned: ReadonlyMap<string, PlannedSource>, env: SourceEnv): Promise<() => void> {
    for (const [name, r] of this.running) {
      if (planned.get(name) === r.planned) continue;
      this.running.delete(name);
      void background(`stopping the ${name}`, () => r.source.stop());
    }
    const opened: RunningSource[] = [];
    for (const [name, p] of planned) {
      if (this.running.has(name)) continue;
      const source = await p.open(env);
      this.running.set(name, { planned: p, source });
      opened.push(source);
    }
    return () => {
      for (const source of opened) source.start();
    };
  }

  /** Stops them all and waits for them. */
  async stop(): Promise<void> {
    const all = [...this.running.values()];
    this.running.clear();
    await Promise.all(all.map((r) => r.source.stop()));
  }

  /** Their parts of the status snapshot; a part no source fills is empty. */
  status(): SourcesStatus {
    const status: SourcesStatus = { journal: [], plugins: [], runtime: null };
    for (const r of this.running.values()) Object.assign(status, r.source.status());
    return status;
  }
}
