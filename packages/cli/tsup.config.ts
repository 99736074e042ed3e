import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

export default defineConfig({
  entry: ['src/index.ts', 'src/bin/walb.ts', 'src/bin/wdevc.ts', 'src/bin/walbc.ts', 'src/bin/walb-storage.ts', 'src/bin/walb-proxy.ts', 'src/bin/walb-archive.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
  target: 'node20',
  define: { __WALBJS_CLI_VERSION__: JSON.stringify(version) },
});
