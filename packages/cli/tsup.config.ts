import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };
const common = { format: ['esm' as const], sourcemap: true, clean: false, target: 'node20', define: { __WALBJS_CLI_VERSION__: JSON.stringify(version) } };
const bins = ['walb', 'wdevc', 'walbc', 'walb-storage', 'walb-proxy', 'walb-archive'];

export default defineConfig([
  // The package's entry, for programs that embed the CLIs: its dependencies stay packages.
  { ...common, entry: ['src/index.ts'], dts: { entry: 'src/index.ts' } },
  // The bins carry yargs and cli-progress inside (their dozens of small modules cost a command
  // about 30 ms to load one by one); the walbjs packages stay outside, loaded when a command needs
  // them. yargs' CommonJS parts ask for node's modules through `require`, which an ES module lacks.
  {
    ...common,
    entry: Object.fromEntries(bins.map((b) => [`bin/${b}`, `src/bin/${b}.ts`])),
    noExternal: [/^(?!@walbjs\/)/],
    banner: { js: "import { createRequire as __walbjsCreateRequire } from 'node:module'; const require = __walbjsCreateRequire(import.meta.url);" },
  },
]);
