import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version, bin } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string; bin: Record<string, string> };
const common = { format: ['esm' as const], sourcemap: true, clean: false, target: 'node20', define: { __WALBJS_CLI_VERSION__: JSON.stringify(version) } };

export default defineConfig([
  // The package's entry, for programs that embed the CLIs: its dependencies stay packages.
  { ...common, entry: ['src/index.ts'], dts: { entry: 'src/index.ts' } },
  // The bins (package.json's `bin`, each from src/bin/<name>.ts) carry yargs and cli-progress
  // inside: their dozens of small modules cost a command about 30 ms to load one by one. The
  // walbjs packages stay outside, loaded when a command needs them. cli-progress, CommonJS, asks
  // for node's own modules through `require`, which an ES module lacks.
  {
    ...common,
    entry: Object.fromEntries(Object.keys(bin).map((b) => [`bin/${b}`, `src/bin/${b}.ts`])),
    noExternal: [/^(?!@walbjs\/)/],
    banner: { js: "import { createRequire as __walbjsCreateRequire } from 'node:module'; const require = __walbjsCreateRequire(import.meta.url);" },
  },
]);
