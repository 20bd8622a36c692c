// `npm run serve [-- --config F --port N]`: the app in a browser. Prints the URL (with its access token) and
// serves until interrupted.
import { parseArgs } from 'node:util';
import { defaultConfigPath } from '../engine/index.ts';
import { previewEntriesFromEnv } from '../host/host.ts';
import { startServe } from './serve.ts';

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    dist: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  allowPositionals: false,
});

if (values.help) {
  process.stdout.write('usage: npm run serve -- [--config config/data_sources.yml] [--port 0] [--host 127.0.0.1] [--dist dist/renderer]\n');
  process.exit(0);
}

const port = values.port === undefined ? 0 : Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`serve: --port ${values.port} is not a port number. Fix: give 0 (any free port) or 1-65535.\n`);
  process.exit(2);
}
const host = values.host ?? '127.0.0.1';
if (!['127.0.0.1', '::1', 'localhost'].includes(host)) {
  process.stderr.write(`serve: warning: binding ${host} exposes the app beyond this machine; anyone with the URL's token can drive it.\n`);
}

try {
  const previewEntries = previewEntriesFromEnv();
  const served = await startServe({
    configPath: values.config ?? defaultConfigPath(),
    port,
    host,
    ...(values.dist ? { distDir: values.dist } : {}),
    ...(previewEntries !== undefined ? { previewEntries } : {}),
  });
  process.stdout.write(`Cloud Ingest app: ${served.url}\n`);
  const stop = (): void => {
    void served.close().finally(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} catch (error) {
  process.stderr.write(`serve: ${(error as Error).message}\n`);
  process.exit(1);
}
