// The allowed import directions between the folders of src/ (docs/architecture.md draws the same arrows).
// test/unit/layering.test.ts runs this through dependency-cruiser; a new import against an arrow or a new
// cycle fails it. An arrow is "A may import B".
//
//   cli/ ─▶ agent.ts ─▶ plan.ts ─▶ registry.ts ─▶ sources/, repair/
//   cli/, plan.ts ─▶ sections.ts ─▶ sources/ (the config sections sources declare)
//   agent.ts, plan.ts ─▶ sources/ engine/ outputs/ repair/                 (cli/ may import anything)
//   cli/ ─▶ support/ ─▶ sources/, outputs/
//   every folder above ─▶ config/ ─▶ system/ ─▶ contract (types.ts, errors.ts, version.ts)
//   repair/ ─▶ outputs/kubernetes/index.ts (the Kubernetes client's public face, nothing else of outputs/)
//
// sources, engine, outputs and repair never import each other otherwise: they meet at the contract.
// Only cli/ loads the native addon (loadNative); every other module is handed it and imports its types only.

const CONTRACT = '^src/(types|errors|version)\\.ts$';
const SYSTEM = '^src/system/';
const CONFIG = '^src/config/';
const LOWER = [CONTRACT, SYSTEM, CONFIG];

/** A rule that lets files matching `from` import only the given paths (besides their own folder). */
function only(name, from, allowed, comment) {
  return {
    name,
    comment,
    severity: 'error',
    from: { path: from },
    to: { path: '^src/', pathNot: [from, ...allowed] },
  };
}

module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      comment: 'a cycle makes the start order of modules depend on who imports first',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    only('contract', CONTRACT, [], 'the contract imports no layer'),
    only('system', SYSTEM, [CONTRACT], 'system/ is the lowest layer: it knows only the contract'),
    only('config', CONFIG, [CONTRACT, SYSTEM], 'config/ knows only the contract and system/'),
    only('sources', '^src/sources/', LOWER, 'sources report through the contract: no engine, outputs or repair'),
    only('engine', '^src/engine/', LOWER, 'the engine reads sources only through the contract'),
    only('outputs', '^src/outputs/', LOWER, 'outputs render what the contract carries'),
    only('repair', '^src/repair/', [...LOWER, '^src/outputs/kubernetes/index\\.ts$'],
      'repair takes the Kubernetes client from its public face only'),
    only('support', '^src/support/', [...LOWER, '^src/sources/', '^src/outputs/'],
      'the support bundle reads sources and outputs; the CLI calls it, never the other way'),
    only('registry', '^src/registry\\.ts$', [...LOWER, '^src/(sources|repair)/'],
      'the registry lists every kind of source: sources/, and runtime health in repair/'),
    only('sections', '^src/sections\\.ts$', [...LOWER, '^src/sources/'],
      'the config sections sources declare; no repair/, so a program that only loads the config stays small'),
    only('plan', '^src/plan\\.ts$', [...LOWER, '^src/(sources|engine|outputs|repair)/', '^src/(registry|sections)\\.ts$'],
      'the plan builds what the layers run, the sources through the registry'),
    {
      name: 'native-from-the-entry',
      comment: 'the native addon is loaded by the entry point (cli/) and passed in; others import only its types',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/cli/', '^src/system/native\\.ts$'] },
      to: { path: '^src/system/native\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    only('agent', '^src/agent\\.ts$', [...LOWER, '^src/(sources|engine|outputs|repair)/', '^src/plan\\.ts$'],
      'the agent wires the layers; only the CLI is above it'),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/native/' },
    // type-only imports count: a layer that needs another's types depends on it all the same
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
