import { readFileSync } from 'node:fs';

declare const __WALBJS_CLI_VERSION__: string | undefined;

function fromPackageJson(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Version of `@walbjs/cli` (set at build time; read from package.json when run from source). */
export const VERSION: string = typeof __WALBJS_CLI_VERSION__ === 'string' ? __WALBJS_CLI_VERSION__ : fromPackageJson();
