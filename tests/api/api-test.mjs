// agentkernel serve, driven by the published Node.js client (npm
// "agentkernel" 0.18.x) for every endpoint it has, and by raw HTTP for what
// a client library would never send: path escapes, malformed bodies,
// missing keys, oversized requests, slow and vanished clients.  Security
// properties are observed from inside the sandboxes.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import {
  AgentKernel, AgentKernelError, AuthError, NotFoundError, ServerError, ValidationError,
} from "agentkernel";

// Every method of the client (npm "agentkernel" 0.18.x), by what this
// server does with it.  The checks below drive each one; a client version
// with a method not listed here fails the first check.
const SDK_WORKS = [
  "health", "run", "runStream", "listSandboxes", "createSandbox", "getSandbox", "getSandboxByUuid", "removeSandbox",
  "execInSandbox", "readFile", "writeFile", "deleteFile", "getSandboxLogs", "writeFiles", "batchRun", "execDetached",
  "detachedStatus", "detachedLogs", "detachedKill", "detachedList", "sandbox", "extendTtl",
];
// Features this server does not have: each answers 501 naming the feature.
const SDK_501 = {
  listOrchestrations: [], createOrchestration: [{ name: "x" }], getOrchestration: ["x"],
  signalOrchestration: ["x", { event: "e" }], terminateOrchestration: ["x"], listOrchestrationDefinitions: [],
  upsertOrchestrationDefinition: [{ name: "x" }], getOrchestrationDefinition: ["x"], deleteOrchestrationDefinition: ["x"],
  listObjects: [], createObject: [{ id: "x" }], getObject: ["x"], callObject: ["C", "x", "m", { a: 1 }],
  deleteObject: ["x"], patchObject: ["x", { status: "s" }],
  listSchedules: [], createSchedule: [{ cron: "* * * * *" }], getSchedule: ["x"], deleteSchedule: ["x"],
  listStores: [], createStore: [{ name: "x" }], getStore: ["x"], deleteStore: ["x"], queryStore: ["x", { sql: "select 1" }],
  executeStore: ["x", { sql: "select 1" }], commandStore: ["x", { command: ["PING"] }],
  listSnapshots: [], takeSnapshot: [{ sandbox: "x" }], getSnapshot: ["x"], deleteSnapshot: ["x"], restoreSnapshot: ["x"],
};
// Not an endpoint: browser() is createSandbox (python:3.12-slim) plus an
// execInSandbox that pip-installs Playwright from the network; it works
// where that image and PyPI can be reached, and is not driven here.
const SDK_CLIENT_SIDE = ["browser"];

const AK = process.env.AK;
if (!AK) {
  console.error("api-test: set AK to the agentkernel binary");
  process.exit(2);
}
// AK_TEST_BACKEND=microvm: every sandbox the checks start (/run,
// /run/stream, /sandboxes, each /batch/run item) asks for that backend,
// whether the published client sends the request (it has no backend
// option) or a raw one does.
// AK_TEST_ONLY (a regex on check names): only those checks run (a
// representative subset for a slow engine).
const BACKEND = process.env.AK_TEST_BACKEND || "container";
const ONLY = process.env.AK_TEST_ONLY ? new RegExp(process.env.AK_TEST_ONLY) : null;
function withBackend(method, path, body) {
  if (BACKEND === "container" || method !== "POST" || typeof body !== "string") return body;
  if (!/^\/(run|run\/stream|sandboxes|batch\/run)(\?|$)/.test(path)) return body;
  let o;
  try { o = JSON.parse(body); } catch { return body; }
  if (path.startsWith("/batch/run")) {
    // Each item without a backend of its own gets it.
    if (!o || !Array.isArray(o.commands)) return body;
    return JSON.stringify({ ...o, commands: o.commands.map((c) => (c && typeof c === "object" && !Array.isArray(c) && !("backend" in c) ? { ...c, backend: BACKEND } : c)) });
  }
  if (!o || typeof o !== "object" || Array.isArray(o) || "backend" in o) return body;
  // Added in front, the rest as sent (a duplicate key stays a duplicate).
  const field = `"backend": ${JSON.stringify(BACKEND)}`;
  return Object.keys(o).length ? body.replace(/^\s*\{/, `{${field}, `) : `{${field}}`;
}
// Waits for a command to start are longer on a VM (it boots first).
const SLOW = BACKEND === "container" ? 1 : 20;
if (BACKEND !== "container") {
  const realFetch = globalThis.fetch;
  globalThis.fetch = (url, init = {}) => {
    const u = new URL(String(url));
    return realFetch(url, { ...init, body: withBackend(init.method || "GET", u.pathname, init.body) });
  };
}
const work = mkdtempSync(join(tmpdir(), "ak-api-"));
const stateDir = join(work, "state");
const auditLog = join(work, "audit.jsonl");
const baseEnv = { ...process.env, AGENTKERNEL_STATE_DIR: stateDir, AGENTKERNEL_AUDIT_LOG: auditLog };
delete baseEnv.AGENTKERNEL_API_KEY;
const servers = [];

let passed = 0;
let failed = 0;
async function check(name, fn) {
  if (ONLY && !ONLY.test(name)) return;
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}`);
    console.log(`  ${String(e && e.stack ? e.stack : e).split("\n").slice(0, 6).join("\n  ")}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts a server on a free port; resolves once it says where it listens.
// Some checks run in the scratch directory through /workspace, which only
// the permissive profile shows: the servers allow it unless told otherwise.
function startServer(args = [], env = {}, { expectExit = false, defaultCap = false } = {}) {
  return new Promise((resolve, reject) => {
    const cap = defaultCap || args.includes("--max-profile") ? [] : ["--max-profile", "permissive"];
    const proc = spawn(AK, ["serve", "--port", "0", ...cap, ...args], {
      cwd: work, env: { ...baseEnv, ...env }, stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    proc.stderr.on("data", (d) => {
      err += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err);
      if (m && !expectExit) {
        const s = { proc, port: Number(m[1]), base: `http://127.0.0.1:${m[1]}`, stderr: () => err };
        servers.push(s);
        resolve(s);
      }
    });
    proc.on("exit", (code) => (expectExit ? resolve({ code, stderr: err }) : reject(new Error(`server exited ${code}: ${err}`))));
    setTimeout(() => reject(new Error(`server did not start: ${err}`)), 10000).unref();
  });
}

// A request exactly as given: the path is not normalised, nothing is added.
function raw(port, method, path, { body, headers = {} } = {}) {
  body = withBackend(method, path, body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers: {
      ...(body !== undefined ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) } : {}),
      ...headers,
    } }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => {
        let json = null;
        try { json = JSON.parse(text); } catch {}
        resolve({ status: res.statusCode, text, json, headers: res.headers });
      });
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// Bytes over a socket; resolves with everything the server sent once it
// closes (or after ms).
function rawSocket(port, chunks, { gapMs = 0, ms = 15000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    let got = "";
    let closed = false;
    sock.on("data", (d) => (got += d));
    sock.on("error", () => {});
    sock.on("close", () => { closed = true; resolve({ got, closed: true }); });
    setTimeout(() => { if (!closed) { sock.destroy(); resolve({ got, closed: false }); } }, ms).unref();
    (async () => {
      for (const c of chunks) {
        if (sock.destroyed) return;
        sock.write(c);
        if (gapMs) await sleep(gapMs);
      }
    })();
  });
}

const statusOf = (text) => Number((/^HTTP\/1\.[01] (\d+)/.exec(text) || [])[1]);

// Output of a command in a persistent sandbox.
async function sh(client, box, script, opts) {
  return client.execInSandbox(box, ["sh", "-c", script], opts);
}

async function expectError(promise, cls, re) {
  let err = null;
  try { await promise; } catch (e) { err = e; }
  assert.ok(err, "expected an error");
  if (cls) assert.ok(err instanceof cls, `expected ${cls.name}, got ${err.name}: ${err.message}`);
  if (re) assert.match(err.message, re);
  return err;
}

async function main() {
  const srv = await startServer(["--reap-interval", "1"]);
  const client = new AgentKernel({ baseUrl: srv.base, timeout: 60000 });
  const box = `api-${process.pid}`;

  // ---- ephemeral runs -------------------------------------------------
  await check("health", async () => assert.equal(await client.health(), "ok"));

  await check("every client method is accounted for: works here, 501, or client-side", async () => {
    const methods = Object.getOwnPropertyNames(AgentKernel.prototype)
      .filter((m) => m !== "constructor" && !["headers", "fetch", "request"].includes(m));
    assert.deepEqual([...methods].sort(), [...SDK_WORKS, ...Object.keys(SDK_501), ...SDK_CLIENT_SIDE].sort());
  });

  await check("the client's methods for features this server lacks get 501 naming the feature, never 404", async () => {
    for (const [m, args] of Object.entries(SDK_501)) {
      const e = await expectError(client[m](...args), ServerError);
      assert.match(e.message, /(orchestrations|objects|schedules|stores|snapshots) are not available/, `${m}: ${e.message}`);
    }
    for (const [method, path] of [["GET", "/orchestrations"], ["POST", "/objects/C/x/call/m"], ["DELETE", "/stores/x"],
      ["PATCH", "/objects/x"], ["POST", "/snapshots/x/restore"], ["GET", "/schedules/x"]]) {
      const r = await raw(srv.port, method, path, { body: "{}" });
      assert.equal(r.status, 501, `${method} ${path}: ${r.text}`);
      assert.equal(r.json.success, false);
      assert.match(r.json.error, /not available in this server/);
    }
  });

  await check("run: output, streams and exit code", async () => {
    const r = await client.run(["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
    assert.match(r.output, /out\n/);
    assert.match(r.output, /err\n/);
    assert.equal(r.exit_code, 3);
  });

  await check("run: the profile is enforced inside (restrictive: no network, read-only root)", async () => {
    const ifaces = (out) => out.split("\n").map((l) => (/^\s*([a-z0-9]+):/.exec(l) || [])[1]).filter(Boolean);
    const r = await client.run(["sh", "-c", "cat /proc/net/dev; touch /etc/x 2>/dev/null; echo rc=$?"], { profile: "restrictive" });
    assert.equal(r.exit_code, 0);
    assert.deepEqual(ifaces(r.stdout), ["lo"]);
    assert.match(r.stdout, /rc=1/);
    // Network on: a default route (through the egress policy, or a NAT helper's device).
    const hasDefault = (out) => out.split("\n").some((l) => l.split("\t")[1] === "00000000");
    const rr = await client.run(["cat", "/proc/net/route"], { profile: "restrictive" });
    assert.ok(!hasDefault(rr.stdout), rr.stdout);
    const m = await client.run(["cat", "/proc/net/route"], { profile: "moderate" });
    assert.ok(hasDefault(m.stdout), m.stdout);
  });

  await check("run: the command holds none of the server's descriptors (no other client's socket)", async () => {
    // Another client is connected meanwhile: its socket must not reach the sandbox.
    const other = net.connect(srv.port, "127.0.0.1");
    await new Promise((r) => other.on("connect", r));
    try {
      const r = await client.run(["sh", "-c", "ls /proc/self/fd; ls -l /proc/self/fd | grep -c socket"]);
      assert.equal(r.stdout, "0\n1\n2\n3\n0\n"); // 3: ls's own directory
    } finally {
      other.destroy();
    }
  });

  await check("run: an image that cannot be pulled is a ValidationError naming it", async () => {
    await expectError(client.run(["true"], { image: "127.0.0.1:1/none:1" }), ValidationError, /127\.0\.0\.1:1\/none/);
  });

  await check("runStream: started, progress, output as produced, done", async () => {
    const events = [];
    const t0 = Date.now();
    for await (const e of client.runStream(["sh", "-c", "echo first; sleep 2; echo second >&2; exit 4"])) {
      events.push({ ...e, at: Date.now() - t0 });
    }
    const types = events.map((e) => e.type);
    assert.equal(types[0], "started");
    assert.match(String(events[0].data.sandbox), /^run-/);
    assert.ok(types.includes("progress"));
    assert.equal(types.at(-1), "done");
    assert.equal(events.at(-1).data.exit_code, 4);
    const outs = events.filter((e) => e.type === "output");
    const first = outs.find((e) => e.data.data === "first\n");
    const second = outs.find((e) => e.data.data === "second\n");
    assert.ok(first && second, JSON.stringify(outs));
    assert.equal(first.data.content, first.data.data);
    assert.equal(first.data.stream, "stdout");
    assert.equal(second.data.stream, "stderr");
    // "first" reached the client while the command was still sleeping.
    assert.ok(events.at(-1).at - first.at > 1000, `first at ${first.at} ms, done at ${events.at(-1).at} ms`);
  });

  await check("audit: /run, /run/stream and /batch/run are on record before they start and when they end", async () => {
    await client.batchRun([{ command: ["sh", "-c", "echo batch-audit; exit 5"] }]);
    const entries = readFileSync(auditLog, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    for (const [script, code] of [["echo out; echo err >&2; exit 3", 3], ["echo first; sleep 2; echo second >&2; exit 4", 4],
      ["echo batch-audit; exit 5", 5]]) {
      const mine = entries.filter((e) => JSON.stringify(e.command) === JSON.stringify(["sh", "-c", script]));
      const events = mine.map((e) => e.event);
      assert.deepEqual(events, ["command_started", "command_executed"], script);
      assert.equal(mine[1].exit_code, code);
    }
  });

  await check("runStream: multi-byte characters survive chunking; bad bytes become U+FFFD", async () => {
    let text = "";
    for await (const e of client.runStream(["sh", "-c", "printf 'h\\303'; sleep 0.3; printf '\\251!\\377'"])) {
      if (e.type === "output") text += e.data.data;
    }
    assert.equal(text, "hé!\ufffd");
  });

  await check("runStream: a bad request is refused before the stream starts", async () => {
    const gen = client.runStream(["true"], { profile: "paranoid" });
    await expectError(gen.next(), ValidationError, /profile/);
  });

  await check("batchRun: results in order, commands run in parallel", async () => {
    // Each command waits until all three have started: only a parallel
    // run finishes (the timeout bounds a serial one).
    const wait = "touch /workspace/batch-$0; i=0; while [ $(ls /workspace | grep -c batch-) -lt 3 ]; do i=$((i+1)); [ $i -gt 300 ] && exit 9; sleep 0.05; done; echo $0";
    const res = await client.batchRun(["a", "b", "c"].map((x) => ({ command: ["sh", "-c", wait, x], profile: "permissive" })));
    assert.equal(res.results.length, 3);
    res.results.forEach((r, i) => {
      assert.equal(r.error, null);
      assert.equal(r.output, `${"abc"[i]}\n`);
    });
    const r2 = await client.batchRun([{ command: ["sh", "-c", "exit 2"] }, { command: ["echo", "ok"] }]);
    assert.equal(r2.results[0].exit_code, 2);
    assert.equal(r2.results[1].output, "ok\n");
  });

  await check("batch/run: an item's backend is the one it runs on, as with /run", async () => {
    // The item names its backend itself: on the microvm the command sees
    // the guest's kernel, on the container the host's.
    const r = await raw(srv.port, "POST", "/batch/run", { body: JSON.stringify({ commands: [{ command: ["uname", "-r"], backend: BACKEND }] }) });
    assert.equal(r.status, 200, r.text);
    const res = r.json.data.results[0];
    assert.equal(res.error, null, r.text);
    assert.equal(res.exit_code, 0);
    if (BACKEND === "microvm") assert.notEqual(res.output, `${release()}\n`);
    else assert.equal(res.output, `${release()}\n`);
    // An unknown backend: the whole batch refused, nothing run.
    const bad = await raw(srv.port, "POST", "/batch/run", { body: JSON.stringify({ commands: [{ command: ["touch", "/workspace/batch-bad"], profile: "permissive" }, { command: ["true"], backend: "bogus" }] }) });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.json.error, /commands\[1\].*backend/);
    assert.ok(!existsSync(join(work, "batch-bad")));
  });

  // ---- persistent sandboxes -------------------------------------------
  let info;
  await check("createSandbox: created and running, with its limits", async () => {
    info = await client.createSandbox(box, { memory_mb: 256, vcpus: 1 });
    assert.equal(info.name, box);
    assert.equal(info.status, "running");
    assert.equal(info.backend, BACKEND);
    assert.equal(info.memory_mb, 256);
    assert.equal(info.vcpus, 1);
    assert.match(info.uuid, /^[0-9a-f-]{36}$/);
  });

  await check("getSandbox, getSandboxByUuid, listSandboxes", async () => {
    assert.equal((await client.getSandbox(box)).uuid, info.uuid);
    assert.equal((await client.getSandboxByUuid(info.uuid)).name, box);
    const list = await client.listSandboxes();
    assert.ok(list.some((s) => s.name === box && s.status === "running"));
  });

  await check("ip: the address the sandbox has on its own network; none without network or when stopped", async () => {
    const inside = await sh(client, box, "grep -B1 '/32 host LOCAL' /proc/net/fib_trie | grep -o '[0-9][0-9.]*' | grep -v '^127\\.' | head -1");
    assert.match(inside.stdout, /^\d+\.\d+\.\d+\.\d+\n$/, inside.stdout + inside.stderr);
    assert.equal((await client.getSandbox(box)).ip, inside.stdout.trim());
    assert.equal((await client.listSandboxes()).find((x) => x.name === box).ip, inside.stdout.trim());
    const nonet = `${box}-nonet`;
    const r = await raw(srv.port, "POST", "/sandboxes", { body: JSON.stringify({ name: nonet, profile: "restrictive" }) });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.data.ip, undefined, r.text);
    const made = `${box}-stopped`;
    await client.createSandbox(made);
    assert.ok((await client.getSandbox(made)).ip);
    const st = await raw(srv.port, "POST", `/sandboxes/${made}/stop`);
    assert.equal(st.json.data.ip, undefined, st.text);
    await client.removeSandbox(nonet);
    await client.removeSandbox(made);
  });

  await check("labels and description: on create, in get and list; bad ones are 400 and create nothing", async () => {
    const lb = `${box}-lab`;
    const r = await raw(srv.port, "POST", "/sandboxes", { body: JSON.stringify({ name: lb, labels: { team: "ml", "app.kubernetes.io/name": "x" }, description: "for the label tests" }) });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json.data.labels, { "app.kubernetes.io/name": "x", team: "ml" });
    assert.equal(r.json.data.description, "for the label tests");
    assert.deepEqual((await client.getSandbox(lb)).labels, { "app.kubernetes.io/name": "x", team: "ml" });
    assert.deepEqual((await client.getSandbox(box)).labels, {});
    assert.ok((await client.listSandboxes()).some((s) => s.name === lb && s.labels.team === "ml"));
    const tooMany = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]));
    for (const body of [{ labels: { "bad key": "v" } }, { labels: { "": "v" } }, { labels: { k: 5 } }, { labels: ["k=v"] },
      { labels: { k: "x".repeat(256) } }, { labels: { k: "a\u0001b" } }, { labels: { [`${"k".repeat(64)}`]: "v" } },
      { labels: tooMany }, { description: 5 }, { description: "x".repeat(1025) }, { description: "bell\u0007" }]) {
      const b = await raw(srv.port, "POST", "/sandboxes", { body: JSON.stringify({ name: `${box}-bad`, ...body }) });
      assert.equal(b.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${b.status} ${b.text}`);
      assert.equal(typeof b.json.error, "string");
    }
    assert.ok(!existsSync(join(stateDir, "sandboxes", `${box}-bad`)));
    await client.removeSandbox(lb);
  });

  await check("PATCH /sandboxes/{name}: a merge patch of labels (null removes one) and description", async () => {
    const p1 = await raw(srv.port, "PATCH", `/sandboxes/${box}`, { body: JSON.stringify({ labels: { env: "dev", team: "core" }, description: "main box" }) });
    assert.equal(p1.status, 200, p1.text);
    assert.deepEqual(p1.json.data.labels, { env: "dev", team: "core" });
    const p2 = await raw(srv.port, "PATCH", `/sandboxes/${box}`, { body: JSON.stringify({ labels: { env: null, tier: "1" } }) });
    assert.deepEqual(p2.json.data.labels, { team: "core", tier: "1" });
    assert.equal(p2.json.data.description, "main box");
    const g = await client.getSandbox(box);
    assert.deepEqual(g.labels, { team: "core", tier: "1" });
    assert.equal(g.status, "running");
    for (const body of ["{}", '{"labels": {"a b": "x"}}', '{"labels": {"ok": "v", "k": 1}}', '{"name": "other"}', '{"labels": 1}', "[1]"]) {
      const b = await raw(srv.port, "PATCH", `/sandboxes/${box}`, { body });
      assert.equal(b.status, 400, `${body}: ${b.text}`);
    }
    assert.deepEqual((await client.getSandbox(box)).labels, { team: "core", tier: "1" }, "a refused patch changes nothing");
    const gone = await raw(srv.port, "PATCH", "/sandboxes/no-such-box", { body: '{"labels": {"a": "b"}}' });
    assert.equal(gone.status, 404);
    const cleared = await raw(srv.port, "PATCH", `/sandboxes/${box}`, { body: JSON.stringify({ description: null }) });
    assert.equal(cleared.json.data.description, undefined);
  });

  await check("GET /sandboxes?label=k:v filters (every filter must match; k alone: has the label)", async () => {
    const other = `${box}-other`;
    await raw(srv.port, "POST", "/sandboxes", { body: JSON.stringify({ name: other, labels: { team: "web", tier: "1" } }) });
    const names = async (q) => (await raw(srv.port, "GET", `/sandboxes${q}`)).json.data.map((s) => s.name).sort();
    assert.deepEqual(await names("?label=team:core"), [box]);
    assert.deepEqual(await names("?label=team:web"), [other]);
    assert.deepEqual(await names("?label=tier"), [box, other].sort());
    assert.deepEqual(await names("?label=tier:1&label=team:web"), [other]);
    assert.deepEqual(await names("?label=team:nobody"), []);
    assert.deepEqual(await names(""), [box, other].sort());
    for (const q of ["?label=bad%20key:v", "?label=", "?labels=team:web", "?label=k:%01"]) {
      const r = await raw(srv.port, "GET", `/sandboxes${q}`);
      assert.equal(r.status, 400, `${q}: ${r.text}`);
    }
    await client.removeSandbox(other);
  });

  await check("GET /status, /stats and /metrics tell the sandboxes, runs, exec latency and errors", async () => {
    const st = (await raw(srv.port, "GET", "/status")).json.data;
    assert.equal(st.status, "ok");
    assert.equal(st.running, 1);
    assert.equal(st.sandboxes, 1);
    assert.match(st.version, /^\d+\.\d+/);
    const before = (await raw(srv.port, "GET", "/stats")).json.data;
    await client.execInSandbox(box, ["true"]);
    await client.run(["true"]);
    await raw(srv.port, "POST", "/run", { body: "{bad" });
    const after = (await raw(srv.port, "GET", "/stats")).json.data;
    assert.equal(after.execs.total, before.execs.total + 1);
    assert.equal(after.runs_total, before.runs_total + 1);
    assert.equal(after.errors.bad_request, (before.errors.bad_request || 0) + 1);
    assert.equal(after.sandboxes.running, 1);
    const m = await raw(srv.port, "GET", "/metrics");
    assert.equal(m.status, 200);
    assert.match(m.headers["content-type"], /^text\/plain; version=0\.0\.4/);
    const val = (re) => Number((re.exec(m.text) || [])[1]);
    assert.equal(val(/^agentkernel_sandboxes\{state="running"\} (\d+)$/m), 1);
    assert.equal(val(/^agentkernel_runs_total (\d+)$/m), after.runs_total);
    assert.equal(val(/^agentkernel_exec_duration_seconds_count (\d+)$/m), after.execs.total);
    assert.equal(val(/^agentkernel_exec_duration_seconds_bucket\{le="\+Inf"\} (\d+)$/m), after.execs.total);
    assert.equal(val(/^agentkernel_errors_total\{kind="bad_request"\} (\d+)$/m), after.errors.bad_request);
    // Every sample line is NAME{LABELS} VALUE, every family has its TYPE.
    for (const l of m.text.split("\n").filter((x) => x && !x.startsWith("#"))) assert.match(l, /^[a-z_]+(\{[a-z]+="[^"]*"\})? [0-9.e+-]+$/, l);
    for (const fam of ["agentkernel_sandboxes gauge", "agentkernel_runs_total counter", "agentkernel_exec_duration_seconds histogram", "agentkernel_errors_total counter"]) {
      assert.ok(m.text.includes(`# TYPE ${fam}\n`), fam);
    }
    assert.equal((await raw(srv.port, "POST", "/metrics")).status, 405);
    assert.equal((await raw(srv.port, "GET", "/stats", { body: '{"x":1}' })).status, 400);
  });

  await check("GET /events: lifecycle events as Server-Sent Events, a keep-alive, and the stream ends with its client", async () => {
    const ac = new AbortController();
    const resp = await fetch(`${srv.base}/events?keepalive=1`, { signal: ac.signal });
    assert.equal(resp.status, 200);
    assert.match(resp.headers.get("content-type"), /^text\/event-stream/);
    const reader = resp.body.getReader();
    let text = "";
    const readUntil = async (pred) => {
      for (let i = 0; i < 200 && !pred(text); i++) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
    };
    const ev = `${box}-ev`;
    await client.createSandbox(ev);
    await raw(srv.port, "POST", `/sandboxes/${ev}/stop`);
    await raw(srv.port, "POST", `/sandboxes/${ev}/start`);
    await client.removeSandbox(ev);
    await readUntil((t) => t.includes(`"event":"removed","sandbox":"${ev}"`));
    const events = text.split("\n\n").filter((b) => b.includes("event: ")).map((b) => {
      const data = JSON.parse(/^data: (.*)$/m.exec(b)[1]);
      assert.equal(/^event: (.*)$/m.exec(b)[1], data.event);
      assert.match(/^id: (\d+)$/m.exec(b)[1], /^\d+$/);
      return data;
    }).filter((d) => d.sandbox === ev);
    assert.deepEqual(events.map((e) => e.event), ["created", "started", "stopped", "started", "stopped", "removed"]);
    assert.ok(events.every((e) => /^\d{4}-\d\d-\d\dT/.test(e.time)));
    await readUntil((t) => t.includes(": keep-alive"));
    assert.ok(text.includes(": keep-alive\n\n"), "no keep-alive comment");
    ac.abort();
    let subs = 1;
    for (let i = 0; i < 50 && subs !== 0; i++) {
      await sleep(100);
      subs = (await raw(srv.port, "GET", "/stats")).json.data.event_subscribers;
    }
    assert.equal(subs, 0, "the stream outlived its client");
    for (const q of ["?keepalive=0", "?keepalive=x", "?keepalive=301"]) assert.equal((await raw(srv.port, "GET", `/events${q}`)).status, 400, q);
    assert.equal((await raw(srv.port, "POST", "/events")).status, 405);
  });

  await check("GET /events: at most 32 streams at once (503 beyond), and an expired sandbox is an event", async () => {
    const acs = Array.from({ length: 32 }, () => new AbortController());
    const streams = await Promise.all(acs.map((ac) => fetch(`${srv.base}/events`, { signal: ac.signal })));
    assert.ok(streams.every((r) => r.status === 200));
    const over = await raw(srv.port, "GET", "/events");
    assert.equal(over.status, 503, over.text);
    assert.match(over.json.error, /too many event streams/);
    const reader = streams[0].body.getReader();
    const ttl = `${box}-evttl`;
    await client.createSandbox(ttl);
    await client.extendTtl(ttl, { by: "1s" });
    let text = "";
    for (let i = 0; i < 100 && !text.includes(`"event":"expired","sandbox":"${ttl}"`); i++) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    assert.match(text, new RegExp(`"event":"expired","sandbox":"${ttl}"`));
    acs.forEach((ac) => ac.abort());
  });

  await check("execInSandbox: env, workdir, exit code", async () => {
    const r = await sh(client, box, 'echo "$FOO"; pwd; exit 5', { env: ["FOO=bar baz"], workdir: "/tmp" });
    assert.equal(r.stdout, "bar baz\n/tmp\n");
    assert.equal(r.exit_code, 5);
  });

  await check("execInSandbox: sudo runs as the sandbox's root (an unprivileged server's sandbox has none)", async () => {
    if (process.getuid() === 0) {
      const r = await client.execInSandbox(box, ["id", "-u"], { sudo: true });
      assert.equal(r.stdout, "0\n");
    } else {
      const r = await raw(srv.port, "POST", `/sandboxes/${box}/exec`, { body: JSON.stringify({ command: ["id"], sudo: true }) });
      assert.equal(r.status, 403, r.text);
      assert.match(r.json.error, /maps no uid 0/);
    }
    const wd = await raw(srv.port, "POST", `/sandboxes/${box}/exec`, { body: JSON.stringify({ command: ["pwd"], workdir: "/nonexistent" }) });
    assert.equal(wd.status, 400, wd.text);
    assert.match(wd.json.error, /working directory \/nonexistent/);
    const u = await client.execInSandbox(box, ["id", "-u"]);
    assert.notEqual(u.stdout, "0\n");
  });

  await check("files: write and read text; binary comes back as base64 with its size", async () => {
    await client.writeFile(box, "tmp/dir/hello.txt", "héllo\n");
    const t = await client.readFile(box, "tmp/dir/hello.txt");
    assert.equal(t.content, "héllo\n");
    assert.equal(t.encoding, "utf8");
    assert.equal(t.size, Buffer.byteLength("héllo\n"));
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await client.writeFile(box, "/tmp/bin", bytes.toString("base64"), { encoding: "base64" });
    const b = await client.readFile(box, "/tmp/bin");
    assert.equal(b.encoding, "base64");
    assert.equal(b.size, 256);
    assert.deepEqual(Buffer.from(b.content, "base64"), bytes);
    const inside = await sh(client, box, "od -An -tx1 /tmp/bin | tr -d ' \\n' | head -c 12; stat -c %U /tmp/dir/hello.txt");
    assert.equal(inside.stdout.slice(0, 12), "000102030405");
  });

  await check("files: delete; a missing file is NotFoundError", async () => {
    await client.deleteFile(box, "tmp/dir/hello.txt");
    await expectError(client.readFile(box, "tmp/dir/hello.txt"), NotFoundError);
    const r = await sh(client, box, "test -e /tmp/dir/hello.txt; echo $?");
    assert.equal(r.stdout, "1\n");
  });

  await check("writeFiles: several at once; relative paths land in the working directory", async () => {
    const res = await client.writeFiles(box, { "rel.txt": "one", "/tmp/abs.txt": "two", "sub/deep.txt": "three" });
    assert.equal(res.written, 3);
    const r = await sh(client, box, "cat rel.txt /tmp/abs.txt sub/deep.txt");
    assert.equal(r.stdout, "onetwothree");
  });

  await check("getSandboxLogs: the sandbox's audit entries", async () => {
    const logs = await client.getSandboxLogs(box);
    const events = logs.map((e) => e.event);
    assert.ok(events.includes("sandbox_created"), events.join());
    assert.ok(events.includes("command_executed"), events.join());
    assert.ok(logs.every((e) => e.sandbox === box));
  });

  await check("detached: start, list, logs per stream, kill", async () => {
    const d = await client.execDetached(box, ["sh", "-c", "echo d-out; echo d-err >&2; sleep 60"]);
    assert.match(d.id, /^[0-9a-f]{16}$/);
    assert.equal(d.sandbox, box);
    assert.equal(d.status, "running");
    assert.ok(Number.isInteger(d.pid) && d.pid > 0);
    assert.deepEqual(d.command, ["sh", "-c", "echo d-out; echo d-err >&2; sleep 60"]);
    let logs;
    for (let i = 0; i < 100; i++) {
      logs = await client.detachedLogs(box, d.id);
      if (logs.stdout && logs.stderr) break;
      await sleep(50);
    }
    assert.equal(logs.stdout, "d-out\n");
    assert.equal(logs.stderr, "d-err\n");
    const errOnly = await client.detachedLogs(box, d.id, "stderr");
    assert.deepEqual(errOnly, { stderr: "d-err\n" });
    assert.ok((await client.detachedList(box)).some((x) => x.id === d.id && x.status === "running"));
    const killed = await client.detachedKill(box, d.id);
    assert.equal(killed.status, "failed");
    assert.equal(killed.exit_code, 137);
    const ps = await sh(client, box, "ps -eo args | grep -c '[s]leep 60'");
    assert.equal(ps.stdout, "0\n");
  });

  await check("detached: a command that ends well is completed, with its exit code", async () => {
    const d = await client.execDetached(box, ["sh", "-c", "echo done"]);
    let s;
    for (let i = 0; i < 100; i++) {
      s = await client.detachedStatus(box, d.id);
      if (s.status !== "running") break;
      await sleep(50);
    }
    assert.equal(s.status, "completed");
    assert.equal(s.exit_code, 0);
    await expectError(client.detachedStatus(box, "0123456789abcdef"), NotFoundError);
    await expectError(client.detachedStatus(box, "../../etc"), AgentKernelError);
  });

  await check("stop and start (POST /sandboxes/{name}/stop|start); exec on a stopped sandbox is 409", async () => {
    const stop = await raw(srv.port, "POST", `/sandboxes/${box}/stop`);
    assert.equal(stop.status, 200);
    assert.equal(stop.json.data.status, "stopped");
    const ex = await raw(srv.port, "POST", `/sandboxes/${box}/exec`, { body: JSON.stringify({ command: ["true"] }) });
    assert.equal(ex.status, 409);
    assert.match(ex.json.error, /not running/);
    const start = await raw(srv.port, "POST", `/sandboxes/${box}/start`);
    assert.equal(start.status, 200);
    assert.equal(start.json.data.status, "running");
    const again = await raw(srv.port, "POST", `/sandboxes/${box}/start`);
    assert.equal(again.status, 409);
    // Files written before the stop are still there (not /tmp: a tmpfs).
    assert.equal((await sh(client, box, "cat rel.txt")).stdout, "one");
  });

  await check("extendTtl: expires_at moves forward by the duration", async () => {
    const before = Date.now();
    const r = await client.extendTtl(box, { by: "30m" });
    const t = Date.parse(r.expires_at);
    assert.ok(t >= before + 30 * 60000 - 2000 && t <= Date.now() + 30 * 60000 + 2000, r.expires_at);
    const r2 = await client.extendTtl(box, { by: "1h" });
    assert.ok(Date.parse(r2.expires_at) - t >= 3600000 - 2000);
    assert.equal((await client.getSandbox(box)).expires_at, r2.expires_at);
    await expectError(client.extendTtl(box, { by: "soon" }), ValidationError);
  });

  await check("an expired sandbox is removed by the server", async () => {
    const ttlBox = `${box}-ttl`;
    await client.createSandbox(ttlBox);
    await client.extendTtl(ttlBox, { by: "1s" });
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      await sleep(100);
      try { await client.getSandbox(ttlBox); } catch (e) { gone = e instanceof NotFoundError; }
    }
    assert.ok(gone, "still there after 10 s");
    assert.ok(!existsSync(join(stateDir, "sandboxes", ttlBox)));
    // The audit entry follows the removal: give it a moment.
    const expired = new RegExp(`"event":"sandbox_expired","sandbox":"${ttlBox}"`);
    for (let i = 0; i < 50 && !expired.test(readFileSync(auditLog, "utf8")); i++) await sleep(100);
    assert.match(readFileSync(auditLog, "utf8"), expired);
  });

  await check("client errors: unknown sandbox 404, duplicate 409, bad name 400", async () => {
    await expectError(client.getSandbox("no-such-box"), NotFoundError, /no such sandbox/);
    await expectError(client.execInSandbox("no-such-box", ["true"]), NotFoundError);
    await expectError(client.getSandboxByUuid("00000000-0000-4000-8000-000000000000"), NotFoundError);
    const dup = await expectError(client.createSandbox(box), AgentKernelError, /already exists/);
    assert.equal(dup.name, "ServerError");
    const r = await raw(srv.port, "POST", "/sandboxes", { body: JSON.stringify({ name: box }) });
    assert.equal(r.status, 409);
    await expectError(client.createSandbox("bad name!"), ValidationError, /invalid sandbox name/);
    await expectError(client.getSandbox("a".repeat(64)), ValidationError);
    await expectError(client.createSandbox("vol", { volumes: ["data:/data"] }), ValidationError, /not supported/);
  });

  await check("the client's sandbox() session: run, writeFiles, info, remove", async () => {
    const name = `${box}-session`;
    const sb = await client.sandbox(name, { profile: "restrictive" });
    await sb.writeFiles({ "/tmp/s.txt": "from a session" });
    assert.equal((await sb.run(["cat", "/tmp/s.txt"])).output, "from a session");
    const i = await sb.info();
    assert.equal(i.profile, "restrictive");
    assert.equal(i.status, "running");
    await sb.remove();
    await sb.remove(); // idempotent
    await expectError(client.getSandbox(name), NotFoundError);
  });

  // ---- bad input, from where an attacker stands -------------------------
  await check("path escapes in file URLs are 400 and change nothing", async () => {
    const paths = [
      "tmp/../etc/passwd", "tmp/%2e%2e/etc/passwd", "tmp/%2E%2E/etc/passwd", "tmp/..%2fetc/passwd",
      "tmp/%2e%2e%2fetc%2fpasswd", "./etc/passwd", "tmp/./x", "tmp/%00x", "",
    ];
    for (const p of paths) {
      for (const method of ["GET", "DELETE"]) {
        const r = await raw(srv.port, method, `/sandboxes/${box}/files/${p}`);
        assert.equal(r.status, 400, `${method} ${p}: ${r.status} ${r.text}`);
        assert.equal(r.json.success, false);
      }
      const w = await raw(srv.port, "PUT", `/sandboxes/${box}/files/${p.replace("etc/passwd", "escaped")}`,
        { body: JSON.stringify({ content: "pwned" }) });
      assert.equal(w.status, 400, `PUT ${p}: ${w.status} ${w.text}`);
    }
    const r = await sh(client, box, "ls /escaped /etc/escaped /tmp/x 2>/dev/null | wc -l; grep -c pwned /etc/passwd");
    assert.equal(r.stdout, "0\n0\n");
  });

  await check("symlinks inside the sandbox are never followed by file requests", async () => {
    await sh(client, box, "mkdir -p /tmp/real && echo secret > /tmp/real/f && ln -sfn /tmp/real /tmp/link && ln -sf /tmp/real/f /tmp/flink && ln -sfn /etc /tmp/etclink");
    for (const [method, path, body] of [
      ["GET", "tmp/link/f"], ["GET", "tmp/flink"], ["GET", "tmp/etclink/passwd"],
      ["PUT", "tmp/link/new", { content: "x" }], ["PUT", "tmp/flink", { content: "overwritten" }],
      ["PUT", "tmp/etclink/planted", { content: "x" }], ["DELETE", "tmp/link/f"],
    ]) {
      const r = await raw(srv.port, method, `/sandboxes/${box}/files/${path}`, body ? { body: JSON.stringify(body) } : {});
      assert.equal(r.status, 400, `${method} ${path}: ${r.status} ${r.text}`);
      assert.match(r.json.error, /symlink/);
    }
    const inside = await sh(client, box, "cat /tmp/real/f; ls /tmp/real; ls /etc/planted 2>&1 | grep -c 'No such'");
    assert.equal(inside.stdout, "secret\nf\n1\n");
    // Deleting the link itself is fine: it does not touch what it points to.
    await client.deleteFile(box, "tmp/flink");
    assert.equal((await sh(client, box, "cat /tmp/real/f; test -L /tmp/flink; echo $?")).stdout, "secret\n1\n");
  });

  await check("file requests on directories and non-files are 400", async () => {
    const r = await raw(srv.port, "GET", `/sandboxes/${box}/files/tmp`);
    assert.equal(r.status, 400);
    const w = await raw(srv.port, "PUT", `/sandboxes/${box}/files/tmp`, { body: JSON.stringify({ content: "x" }) });
    assert.equal(w.status, 400);
    const d = await raw(srv.port, "GET", `/sandboxes/${box}/files/dev/null`);
    assert.equal(d.status, 400);
  });

  await check("a file too large to read is 413 at once (not read to its end)", async () => {
    await sh(client, box, "truncate -s 200G /home/user/huge");
    const r = await raw(srv.port, "GET", `/sandboxes/${box}/files/home/user/huge`);
    assert.equal(r.status, 413);
    assert.match(r.json.error, /larger than/);
    await client.deleteFile(box, "home/user/huge");
  });

  await check("malformed JSON, wrong types and unknown fields are 400", async () => {
    const cases = [
      ["POST", "/run", "{not json"], ["POST", "/run", "[1,2]"], ["POST", "/run", '{"command": "ls"}'],
      ["POST", "/run", '{"command": []}'], ["POST", "/run", '{"command": [1]}'], ["POST", "/run", '{"command": ["a\\u0000b"]}'],
      ["POST", "/run", '{"command": ["true"], "profile": "none"}'], ["POST", "/run", '{"command": ["true"], "fast": "yes"}'],
      ["POST", "/run", '{"command": ["true"], "comand": ["x"]}'], ["POST", "/run", '{"command": ["true"], "command": ["x"]}'],
      ["POST", "/sandboxes", '{"name": 5}'], ["POST", "/sandboxes", "{}"], ["POST", "/sandboxes", '{"name": "x", "memory_mb": -1}'],
      ["POST", `/sandboxes/${box}/exec`, '{"command": ["true"], "env": ["NOEQUALS"]}'],
      ["POST", `/sandboxes/${box}/exec`, '{"command": ["true"], "workdir": "relative"}'],
      ["POST", `/sandboxes/${box}/exec`, '{"command": ["true"], "sudo": 1}'],
      ["PUT", `/sandboxes/${box}/files/tmp/z`, '{"content": "!!", "encoding": "base64"}'],
      ["PUT", `/sandboxes/${box}/files/tmp/z`, '{"content": "x", "encoding": "rot13"}'],
      ["PUT", `/sandboxes/${box}/files/tmp/z`, '{"content": 5}'],
      ["POST", `/sandboxes/${box}/files`, '{"files": {"../x": "y"}}'], ["POST", `/sandboxes/${box}/files`, '{"files": []}'],
      ["POST", `/sandboxes/${box}/extend`, '{"by": "-5m"}'], ["POST", `/sandboxes/${box}/extend`, '{"by": "999d"}'],
      ["POST", "/batch/run", '{"commands": []}'], ["POST", "/batch/run", '{"commands": [{"command": ["true"], "x": 1}]}'],
    ];
    for (const [method, path, body] of cases) {
      const r = await raw(srv.port, method, path, { body });
      assert.equal(r.status, 400, `${method} ${path} ${body}: ${r.status} ${r.text}`);
      assert.equal(r.json.success, false);
      assert.equal(typeof r.json.error, "string");
    }
    assert.ok(!existsSync(join(stateDir, "sandboxes", "x")));
    assert.equal((await sh(client, box, "ls /tmp/z 2>/dev/null | wc -l")).stdout, "0\n");
  });

  await check("unknown endpoints are 404, wrong methods 405", async () => {
    assert.equal((await raw(srv.port, "GET", "/nope")).status, 404);
    assert.equal((await raw(srv.port, "GET", `/sandboxes/${box}/whatever`)).status, 404);
    assert.equal((await raw(srv.port, "GET", "/run")).status, 405);
    assert.equal((await raw(srv.port, "PUT", `/sandboxes/${box}`)).status, 405);
  });

  await check("a client that disconnects mid-stream ends its command", async () => {
    const hb = join(work, "hb-stream");
    const ac = new AbortController();
    const resp = await fetch(`${srv.base}/run/stream`, {
      method: "POST", signal: ac.signal, headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ profile: "permissive", command: ["sh", "-c", "echo up; while :; do date +%s%N > /workspace/hb-stream; sleep 0.1; done"] }),
    });
    const reader = resp.body.getReader();
    const { value } = await reader.read();
    assert.match(Buffer.from(value).toString(), /event: started/);
    for (let i = 0; i < 50 * SLOW && !existsSync(hb); i++) await sleep(100);
    assert.ok(existsSync(hb), "the command never ran");
    ac.abort();
    await sleep(SLOW > 1 ? 10000 : 1500); // a VM is stopped, not just a process group
    const a = readFileSync(hb, "utf8");
    await sleep(1000);
    assert.equal(readFileSync(hb, "utf8"), a, "the command is still running after its client left");
  });

  await check("a client that disconnects mid-exec ends its command", async () => {
    const ac = new AbortController();
    const p = fetch(`${srv.base}/sandboxes/${box}/exec`, {
      method: "POST", signal: ac.signal, headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ command: ["sh", "-c", "while :; do date +%s%N > /tmp/hb-exec; sleep 0.1; done"] }),
    }).catch(() => null);
    await sleep(1000);
    ac.abort();
    await p;
    await sleep(1000);
    const r = await sh(client, box, "a=$(cat /tmp/hb-exec); sleep 1; b=$(cat /tmp/hb-exec); [ \"$a\" = \"$b\" ] && echo stopped; ps -eo args | grep -c '^sh -c while'");
    assert.equal(r.stdout, "stopped\n0\n");
  });

  await check("removeSandbox: gone, and its state with it", async () => {
    await client.removeSandbox(box);
    await expectError(client.getSandbox(box), NotFoundError);
    assert.ok(!(await client.listSandboxes()).some((s) => s.name === box));
    assert.ok(!existsSync(join(stateDir, "sandboxes", box)));
  });

  await check("the server is still healthy, with no sandbox or worker left behind", async () => {
    assert.equal(await client.health(), "ok");
    const kids = spawnSync("ps", ["-o", "pid=,stat=,args=", "--ppid", String(srv.proc.pid)], { encoding: "utf8" }).stdout
      .split("\n").filter((l) => l.trim() && !/\bZ/.test(l.trim().split(/\s+/)[1] || ""));
    assert.deepEqual(kids, []);
    assert.deepEqual(await client.listSandboxes(), []);
  });

  await check("POST /gc removes expired sandboxes (and only those)", async () => {
    // A state directory of its own: the main server sweeps every second.
    const gcState = join(work, "gc-state");
    const g = await startServer(["--reap-interval", "3600"], { AGENTKERNEL_STATE_DIR: gcState });
    const c = new AgentKernel({ baseUrl: g.base, timeout: 60000 });
    const old = `${box}-gc-old`;
    const keep = `${box}-gc-keep`;
    await c.createSandbox(old);
    await c.createSandbox(keep);
    await c.extendTtl(old, { by: "1s" });
    await c.extendTtl(keep, { by: "1h" });
    await sleep(2100);
    assert.ok((await c.listSandboxes()).some((s) => s.name === old), "the sweep ran although it should not have yet");
    const r = await raw(g.port, "POST", "/gc");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.data.removed, 1);
    const left = (await c.listSandboxes()).map((s) => s.name);
    assert.ok(!left.includes(old) && left.includes(keep), left.join());
    assert.ok(!existsSync(join(gcState, "sandboxes", old)));
    assert.equal((await raw(g.port, "POST", "/gc", { body: '{"all": true}' })).status, 400);
    assert.equal((await raw(g.port, "GET", "/gc")).status, 405);
    await c.removeSandbox(keep);
    g.proc.kill("SIGTERM");
  });

  await check("SandboxSession (client.sandbox): run, info, writeFiles, remove", async () => {
    const sb = await client.sandbox(`${box}-session`, { memory_mb: 256 });
    assert.equal((await sb.run(["echo", "in session"])).stdout, "in session\n");
    assert.equal((await sb.info()).status, "running");
    assert.equal((await sb.writeFiles({ "/tmp/s.txt": "s" })).written, 1);
    assert.equal((await sb.run(["cat", "/tmp/s.txt"])).stdout, "s");
    await sb.remove();
    await sb.remove(); // idempotent
    await expectError(client.getSandbox(`${box}-session`), NotFoundError);
  });

  // ---- authentication and limits --------------------------------------
  const KEY = "k3y-" + process.pid;
  const lim = await startServer(["--max-connections", "2", "--max-body", "4096", "--max-header", "8192",
    "--body-timeout", "1", "--idle-timeout", "2", "--command-timeout", "1"], { AGENTKERNEL_API_KEY: KEY });

  await check("with an API key, requests without it (or with a wrong one) are 401", async () => {
    for (const headers of [{}, { Authorization: "Bearer wrong" }, { Authorization: `Bearer ${KEY}x` },
      { "X-API-Key": KEY.slice(0, -1) }, { Authorization: KEY }]) {
      const r = await raw(lim.port, "GET", "/health", { headers });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(r.json.success, false);
    }
    const r = await raw(lim.port, "POST", "/run", { body: JSON.stringify({ command: ["true"] }) });
    assert.equal(r.status, 401);
    await expectError(new AgentKernel({ baseUrl: lim.base }).health(), AuthError);
  });

  await check("the key works as a Bearer token (the client's way) and as X-API-Key", async () => {
    assert.equal(await new AgentKernel({ baseUrl: lim.base, apiKey: KEY }).health(), "ok");
    assert.equal((await raw(lim.port, "GET", "/health", { headers: { "X-API-Key": KEY } })).status, 200);
  });

  const auth = { Authorization: `Bearer ${KEY}` };
  await check("a body over the limit is 413", async () => {
    const body = JSON.stringify({ command: ["echo", "x".repeat(5000)] });
    const r = await raw(lim.port, "POST", "/run", { body, headers: auth });
    assert.equal(r.status, 413);
    assert.match(r.json.error, /larger than 4096 bytes/);
    const chunked = await rawSocket(lim.port, [
      `POST /run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
      "1388\r\n" + "x".repeat(5000) + "\r\n0\r\n\r\n",
    ]);
    assert.equal(statusOf(chunked.got), 413, chunked.got);
  });

  await check("headers over the limit are refused with a 4xx", async () => {
    const r = await rawSocket(lim.port, [`GET /health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nX-Big: ${"y".repeat(20000)}\r\n\r\n`]);
    const st = statusOf(r.got);
    assert.ok(st >= 400 && st < 500, r.got.slice(0, 200));
  });

  await check("a body that arrives too slowly is 408", async () => {
    const body = JSON.stringify({ command: ["true"] });
    const chunks = [`POST /run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      ...body.split("")];
    const r = await rawSocket(lim.port, chunks, { gapMs: 150 });
    assert.equal(statusOf(r.got), 408, r.got);
  });

  await check("a silent connection is closed", async () => {
    const r = await rawSocket(lim.port, [], { ms: 10000 });
    assert.ok(r.closed);
  });

  await check("a command over the time limit is killed: 504", async () => {
    const r = await raw(lim.port, "POST", "/run", { body: JSON.stringify({ command: ["sleep", "30"] }), headers: auth });
    assert.equal(r.status, 504);
    assert.match(r.json.error, /limit of 1 s/);
  });

  await check("an exec whose output outlives its kill does not hold the request", async () => {
    const made = await raw(lim.port, "POST", "/sandboxes", { body: JSON.stringify({ name: `${box}-hold` }), headers: auth });
    assert.equal(made.status, 201, made.text);
    // setsid: a process outside the command's group keeps stdout open.
    const r = await raw(lim.port, "POST", `/sandboxes/${box}-hold/exec`,
      { body: JSON.stringify({ command: ["sh", "-c", "setsid sleep 60 & sleep 60"] }), headers: auth });
    assert.equal(r.status, 504, r.text);
    assert.equal((await raw(lim.port, "DELETE", `/sandboxes/${box}-hold`, { headers: auth })).status, 200);
  });

  await check("connections over the limit get 503, the others are served", async () => {
    // A server of its own with a generous command limit: the two commands
    // holding the connections must not be cut short on a loaded machine.
    const cl = await startServer(["--max-connections", "2", "--command-timeout", "60"], { AGENTKERNEL_API_KEY: KEY });
    try {
      const slow = () => raw(cl.port, "POST", "/run", { body: JSON.stringify({ command: ["sleep", "10"] }), headers: auth });
      const a = slow();
      const b = slow();
      // Until both are being served (a loaded machine, or the ASan build,
      // may take a while to accept them), /health still gets through.
      let c;
      for (let i = 0; i < 40; i++) {
        await sleep(200);
        c = await raw(cl.port, "GET", "/health", { headers: auth });
        if (c.status !== 200) break;
      }
      assert.equal(c.status, 503);
      assert.match(c.json.error, /too many/);
      assert.equal((await a).status, 200);
      assert.equal((await b).status, 200);
      assert.equal((await raw(cl.port, "GET", "/health", { headers: auth })).status, 200);
    } finally {
      cl.proc.kill("SIGTERM");
    }
  });

  await check("a non-loopback address needs an API key", async () => {
    const r = await startServer(["--host", "0.0.0.0"], {}, { expectExit: true });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /without an API key/);
    const e = await startServer([], { AGENTKERNEL_API_KEY: "" }, { expectExit: true });
    assert.equal(e.code, 125);
    const bad = await startServer(["--port", "99999"], {}, { expectExit: true });
    assert.equal(bad.code, 125);
  });

  await check("--max-profile: a looser profile is refused (403) by default, allowed when raised", async () => {
    const s = await startServer([], {}, { defaultCap: true });
    const body = JSON.stringify({ profile: "permissive", command: ["sh", "-c", "echo ran > /workspace/cap-ran"] });
    const r = await raw(s.port, "POST", "/run", { body });
    assert.equal(r.status, 403, r.text);
    assert.match(r.json.error, /at most moderate.*--max-profile permissive/);
    assert.equal(existsSync(join(work, "cap-ran")), false);
    const b = await raw(s.port, "POST", "/batch/run", { body: JSON.stringify({ commands: [{ command: ["true"], profile: "permissive" }] }) });
    assert.equal(b.status, 403, b.text);
    const ok = await raw(s.port, "POST", "/run", { body: JSON.stringify({ profile: "restrictive", command: ["true"] }) });
    assert.equal(ok.status, 200, ok.text);
    const p = await startServer(["--max-profile", "permissive"]);
    const r2 = await raw(p.port, "POST", "/run", { body });
    assert.equal(r2.status, 200, r2.text);
    assert.equal(existsSync(join(work, "cap-ran")), true);
    const bad = await startServer(["--max-profile", "lax"], {}, { expectExit: true });
    assert.equal(bad.code, 125);
    s.proc.kill("SIGTERM");
    p.proc.kill("SIGTERM");
  });

  await check("SIGTERM stops the server and the commands it runs", async () => {
    const s = await startServer();
    const c = new AgentKernel({ baseUrl: s.base });
    const hb = join(work, "hb-term");
    const p = c.run(["sh", "-c", "while :; do date +%s%N > /workspace/hb-term; sleep 0.1; done"], { profile: "permissive" }).catch((e) => e);
    for (let i = 0; i < 50 * SLOW && !existsSync(hb); i++) await sleep(100);
    const exited = new Promise((r) => s.proc.on("exit", (code) => r(code)));
    s.proc.kill("SIGTERM");
    assert.equal(await exited, 0);
    await p;
    const a = readFileSync(hb, "utf8");
    await sleep(800);
    assert.equal(readFileSync(hb, "utf8"), a);
  });
}

try {
  await main();
} finally {
  for (const s of servers) s.proc.kill("SIGKILL");
  // Whatever a failed check left behind.
  for (const sd of [stateDir, join(work, "gc-state")]) {
    const dir = join(sd, "sandboxes");
    for (const name of existsSync(dir) ? readdirSync(dir) : []) {
      if (!name.startsWith(".")) spawnSync(AK, ["remove", "--force", name], { env: { ...baseEnv, AGENTKERNEL_STATE_DIR: sd } });
    }
  }
  rmSync(work, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
