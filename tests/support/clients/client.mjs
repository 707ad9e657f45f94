// Drives @kubernetes/client-node 1.4 (npm; 2.x needs Node >= 22) the way
// applications use it, for kcc's healing tests (tests/clients.rs).
//
//     node client.mjs PATTERN STATE_DIR      (the kubeconfig comes from $KUBECONFIG)
//
// Prints one JSON object: {"ok": n, "failed": [status or error, ...]}.
// Every API call is GET /version (VersionApi.getCode).
//
// Patterns (one Node process each: one parent process for kcc):
//   kc3          three KubeConfig objects, loadFromDefault, one call each
//   concurrent5  one KubeConfig, five concurrent first calls
//   revoke       load, call; write STATE_DIR/ready and wait for STATE_DIR/go
//                (the test revokes the token meanwhile); call again with the
//                same KubeConfig (fails: client-node does not re-run the
//                plugin after a 401), then load a new KubeConfig and call
import fs from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';

const [pattern, state] = process.argv.slice(2);
const result = { ok: 0, failed: [] };

function load() {
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  return kc.makeApiClient(k8s.VersionApi);
}

async function call(api) {
  try {
    await api.getCode();
    result.ok += 1;
  } catch (e) {
    result.failed.push(e.code ?? String(e).slice(0, 200));
  }
}

async function waitForGo() {
  fs.writeFileSync(path.join(state, 'ready'), '');
  const deadline = Date.now() + 60000;
  while (!fs.existsSync(path.join(state, 'go'))) {
    if (Date.now() > deadline) throw new Error('client.mjs: no go file within 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (pattern === 'kc3') {
  for (let i = 0; i < 3; i++) await call(load());
} else if (pattern === 'concurrent5') {
  const api = load();
  await Promise.all([0, 1, 2, 3, 4].map(() => call(api)));
} else if (pattern === 'revoke') {
  const api = load();
  await call(api);
  await waitForGo();
  await call(api);
  await call(load());
} else {
  console.error(`client.mjs: unknown pattern ${pattern}`);
  process.exit(2);
}
console.log(JSON.stringify(result));
