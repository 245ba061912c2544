import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, cpSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

/** Compiled to build/scripts; the repository root is two levels up. */
export const REPO_ROOT = resolve(__dirname, '../..');
export const GENERATED_DIR = join(REPO_ROOT, 'src', 'generated');
const PROTO_ROOT = join(REPO_ROOT, 'proto');
const ENTRY_PROTOS = ['envoy/service/ratelimit/v3/rls.proto'];
const TS_PROTO_OPTIONS = ['outputServices=grpc-js', 'esModuleInterop=true', 'env=node', 'snakeToCamel=false'];

export function protocAvailable(): boolean {
  try {
    execFileSync('protoc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs protoc with the ts-proto plugin into `outDir` (imports such as google/protobuf come too). */
export function generateProtoCode(outDir: string): void {
  const plugin = join(REPO_ROOT, 'node_modules', '.bin', 'protoc-gen-ts_proto');
  execFileSync(
    'protoc',
    [`--plugin=protoc-gen-ts_proto=${plugin}`, `--ts_proto_out=${outDir}`, `--ts_proto_opt=${TS_PROTO_OPTIONS.join(',')}`, '-I', PROTO_ROOT, ...ENTRY_PROTOS],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
}

/** Every generated file, relative path → text without the protoc version line (it differs by machine, not by content). */
export function readGenerated(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (current: string): void => {
    for (const name of readdirSync(current)) {
      const path = join(current, name);
      if (statSync(path).isDirectory()) walk(path);
      else files.set(relative(dir, path), readFileSync(path, 'utf8').replace(/^\/\/ {3}protoc {2,}v.*$/m, ''));
    }
  };
  walk(dir);
  return files;
}

function main(): void {
  if (!protocAvailable()) {
    console.error('protoc not found: install it (Debian: apt-get install -y protobuf-compiler) and run npm run gen again');
    process.exit(1);
  }
  const outDir = mkdtempSync(join(tmpdir(), 'ringlimit-gen-'));
  try {
    generateProtoCode(outDir);
    rmSync(GENERATED_DIR, { recursive: true, force: true });
    cpSync(outDir, GENERATED_DIR, { recursive: true });
    console.log(`generated ${readGenerated(GENERATED_DIR).size} files into ${relative(REPO_ROOT, GENERATED_DIR)}`);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

if (require.main === module) main();
