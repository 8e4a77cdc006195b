// node-vault (npm), a real Vault client, drives a bulwark server end to end. Run by
// node_vault_test.cc with VAULT_ADDR set, in one of two phases:
//   PHASE=first   an uninitialised server: init, unseal, status, health, mounts, mount/unmount,
//                 write/read/list/delete on the built-in kv and on an external C++ plugin
//                 registered through the catalog, step-down, seal. Keys go to KEYS_FILE.
//   PHASE=reopen  the same storage after a restart: sealed, unseal with the saved keys, the data
//                 written before is there, seal.
// Any failed assertion throws: the process exits non-zero with the step's name and the error.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const nodeVault = require('node-vault');

const endpoint = process.env.VAULT_ADDR;
const vault = nodeVault({ apiVersion: 'v1', endpoint });

// Resolves to the ApiResponseError of a call that must fail with `status`.
async function apiError(promise, status, messagePattern) {
  let error;
  await assert.rejects(promise, (e) => {
    error = e;
    return true;
  });
  assert.ok(error.response, `expected an API error, got: ${error}`);
  assert.equal(error.response.statusCode, status, `status of "${error.message}"`);
  if (messagePattern) assert.match(error.message, messagePattern);
  return error;
}

function mountsOf(reply) {
  return reply.data && typeof reply.data === 'object' ? reply.data : reply;
}

const phases = {
  async first() {
    const steps = [];
    const step = (name, fn) => steps.push([name, fn]);
    let init;

    step('a new server is not initialised', async () => {
      assert.deepEqual(await vault.initialized(), { initialized: false });
      const status = await vault.status();
      assert.equal(status.initialized, false);
      assert.equal(status.sealed, true);
      const health = await vault.health(); // 501: node-vault returns the body of sys/health.
      assert.equal(health.initialized, false);
    });
    step('init with three shares, threshold two', async () => {
      init = await vault.init({ secret_shares: 3, secret_threshold: 2 });
      assert.equal(init.keys.length, 3);
      assert.equal(init.keys_base64.length, 3);
      assert.ok(init.root_token.length > 0);
      fs.writeFileSync(process.env.KEYS_FILE, JSON.stringify(init));
      await apiError(vault.init({ secret_shares: 1, secret_threshold: 1 }), 400,
          /already initialized/);
    });
    step('sealed after init', async () => {
      const status = await vault.status();
      assert.equal(status.initialized, true);
      assert.equal(status.sealed, true);
      assert.equal(status.t, 2);
      assert.equal(status.n, 3);
      assert.equal((await vault.health()).sealed, true); // 503, body returned.
      vault.token = init.root_token;
      await apiError(vault.mounts(), 503, /Vault is sealed/);
    });
    step('unseal with shares 1 and 3 (hex and base64)', async () => {
      let status = await vault.unseal({ key: init.keys[0] });
      assert.equal(status.sealed, true);
      assert.equal(status.progress, 1);
      status = await vault.unseal({ key: init.keys_base64[2] });
      assert.equal(status.sealed, false);
      assert.equal(status.progress, 0);
    });
    step('health and leader of an unsealed single node', async () => {
      const health = await vault.health();
      assert.equal(health.initialized, true);
      assert.equal(health.sealed, false);
      assert.equal(health.standby, false);
      const leader = await vault.leader();
      assert.equal(typeof leader.ha_enabled, 'boolean');
    });
    step('no token or a wrong one is permission denied', async () => {
      const anonymous = nodeVault({ apiVersion: 'v1', endpoint });
      await apiError(anonymous.mounts(), 403, /permission denied/);
      const wrong = nodeVault({ apiVersion: 'v1', endpoint, token: 'not-a-token' });
      await apiError(wrong.read('sys/mounts'), 403, /permission denied/);
      assert.equal((await anonymous.status()).sealed, false); // Unauthenticated endpoint.
    });
    step('mounts lists sys/', async () => {
      const mounts = mountsOf(await vault.mounts());
      assert.ok(mounts['sys/'], JSON.stringify(mounts));
    });
    step('mount the built-in kv at kv-e2e/ and keep/', async () => {
      await vault.mount({ mount_point: 'kv-e2e', type: 'kv', description: 'node-vault e2e' });
      await vault.mount({ mount_point: 'keep', type: 'kv' });
      const mounts = mountsOf(await vault.mounts());
      assert.equal(mounts['kv-e2e/'].type, 'kv');
      assert.equal(mounts['kv-e2e/'].description, 'node-vault e2e');
      await apiError(vault.mount({ mount_point: 'kv-e2e', type: 'kv' }), 400);
    });
    step('write, read, list, delete on the built-in kv', async () => {
      await vault.write('kv-e2e/app/db', { user: 'alice', password: 'pw' });
      await vault.write('kv-e2e/app/cache', { url: 'redis://cache' });
      await vault.write('keep/durable', { survives: 'restart' });
      assert.deepEqual((await vault.read('kv-e2e/app/db')).data, { user: 'alice', password: 'pw' });
      assert.deepEqual((await vault.list('kv-e2e/app')).data.keys.sort(), ['cache', 'db']);
      assert.deepEqual((await vault.list('kv-e2e/')).data.keys, ['app/']);
      await vault.delete('kv-e2e/app/db');
      await apiError(vault.read('kv-e2e/app/db'), 404);
      assert.deepEqual((await vault.list('kv-e2e/app')).data.keys, ['cache']);
    });
    step('an external C++ plugin registered through the catalog', async () => {
      const sha256 = process.env.PLUGIN_SHA256;
      const command = process.env.PLUGIN_COMMAND;
      await vault.write('sys/plugins/catalog/secret/ext-kv', { sha256, command });
      const entry = await vault.read('sys/plugins/catalog/secret/ext-kv');
      assert.equal(entry.data.sha256, sha256);
      assert.equal(entry.data.builtin, false);
      assert.ok((await vault.list('sys/plugins/catalog/secret')).data.keys.includes('ext-kv'));
      await vault.mount({ mount_point: 'ext', type: 'ext-kv' });
      await vault.write('ext/k', { v: '1' });
      assert.deepEqual((await vault.read('ext/k')).data, { v: '1' });
      assert.deepEqual((await vault.list('ext/')).data.keys, ['k']);
      await vault.write('sys/plugins/reload/backend', { plugin: 'ext-kv' });
      assert.deepEqual((await vault.read('ext/k')).data, { v: '1' });
      await vault.delete('ext/k');
      await apiError(vault.read('ext/k'), 404);
      await vault.unmount({ mount_point: 'ext' });
      await vault.delete('sys/plugins/catalog/secret/ext-kv');
      await apiError(vault.read('sys/plugins/catalog/secret/ext-kv'), 404);
    });
    step('unmount', async () => {
      await vault.unmount({ mount_point: 'kv-e2e' });
      assert.equal(mountsOf(await vault.mounts())['kv-e2e/'], undefined);
      await apiError(vault.read('kv-e2e/app/cache'), 404);
    });
    step('step-down', async () => {
      await vault.stepDown();
    });
    step('seal', async () => {
      await vault.seal();
      const status = await vault.status();
      assert.equal(status.sealed, true);
      assert.equal((await vault.health()).sealed, true);
      await apiError(vault.read('keep/durable'), 503, /Vault is sealed/);
    });
    return steps;
  },

  async reopen() {
    const steps = [];
    const step = (name, fn) => steps.push([name, fn]);
    const init = JSON.parse(fs.readFileSync(process.env.KEYS_FILE, 'utf8'));
    step('initialised and sealed after a restart', async () => {
      const status = await vault.status();
      assert.equal(status.initialized, true);
      assert.equal(status.sealed, true);
    });
    step('unseal with the saved shares', async () => {
      await vault.unseal({ key: init.keys[1] });
      assert.equal((await vault.unseal({ key: init.keys[2] })).sealed, false);
      vault.token = init.root_token;
    });
    step('data and mounts written before the restart are there', async () => {
      assert.deepEqual((await vault.read('keep/durable')).data, { survives: 'restart' });
      assert.equal(mountsOf(await vault.mounts())['kv-e2e/'], undefined);
    });
    step('seal', async () => {
      await vault.seal();
      assert.equal((await vault.status()).sealed, true);
    });
    return steps;
  },
};

(async () => {
  const phase = process.env.PHASE;
  const steps = await phases[phase]();
  for (const [name, fn] of steps) {
    try {
      await fn();
    } catch (error) {
      console.error(`not ok - ${phase}: ${name}`);
      console.error(error);
      process.exit(1);
    }
    console.log(`ok - ${phase}: ${name}`);
  }
})();
