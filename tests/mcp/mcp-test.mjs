// agentkernel mcp-server checked with the official MCP TypeScript SDK client:
// tool listing, ephemeral runs, the persistent-sandbox life cycle, tool
// errors, and raw framing (malformed input, nothing but JSON on stdout).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const AK = process.env.AK;
if (!AK) {
  console.error("mcp-test: set AK to the agentkernel binary");
  process.exit(2);
}
// AK_TEST_BACKEND=microvm: sandbox_run and sandbox_create ask for that
// backend (unless a check names one). AK_TEST_ONLY (a regex on check
// names): only those checks run (a representative subset for a slow engine).
const BACKEND = process.env.AK_TEST_BACKEND || "container";
const ONLY = process.env.AK_TEST_ONLY ? new RegExp(process.env.AK_TEST_ONLY) : null;
if (BACKEND !== "container") {
  const callTool = Client.prototype.callTool;
  Client.prototype.callTool = function (params, ...rest) {
    if (["sandbox_run", "sandbox_create"].includes(params.name) && params.arguments && !("backend" in params.arguments))
      params = { ...params, arguments: { ...params.arguments, backend: BACKEND } };
    return callTool.call(this, params, ...rest);
  };
}
const stateDir = mkdtempSync(join(tmpdir(), "ak-mcp-state-"));
const env = { ...process.env, AGENTKERNEL_STATE_DIR: stateDir, AGENTKERNEL_AUDIT: "0" };

// agentkernel's sandbox tools (its snapshot, browser and permission tools
// are not offered: docs/compat.md says why).
const TOOLS = [
  "sandbox_run", "sandbox_create", "sandbox_start", "sandbox_stop", "sandbox_remove",
  "sandbox_exec", "sandbox_list", "sandbox_info", "sandbox_file_write", "sandbox_file_read",
  "sandbox_write_files", "sandbox_exec_detach", "sandbox_exec_status", "sandbox_exec_logs",
  "sandbox_exec_kill", "sandbox_exec_list", "sandbox_extend_ttl",
];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let passed = 0;
let failedChecks = 0;
async function check(name, fn) {
  if (ONLY && !ONLY.test(name)) return;
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    console.log(`not ok - ${name}`);
    // On another backend every check runs, and each failure is told.
    if (BACKEND === "container") throw e;
    failedChecks++;
    console.log(`  ${String(e && e.stack ? e.stack : e).split("\n").slice(0, 4).join("\n  ")}`);
  }
}

const text = (r) => r.content.map((c) => c.text).join("");

async function sdkTests() {
  const transport = new StdioClientTransport({ command: AK, args: ["mcp-server"], env, stderr: "inherit" });
  const client = new Client({ name: "agentkernel-mcp-test", version: "1.0.0" });
  await client.connect(transport);
  const call = (name, args) => client.callTool({ name, arguments: args });
  const box = `mcp-test-${process.pid}`;

  try {
    await check("server identifies itself", async () => {
      const info = client.getServerVersion();
      assert.equal(info.name, "agentkernel");
      assert.ok(client.getServerCapabilities().tools);
    });

    await check("tools/list has all tools with input schemas", async () => {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), [...TOOLS].sort());
      for (const t of tools) {
        assert.equal(t.inputSchema.type, "object", t.name);
        assert.equal(typeof t.inputSchema.properties, "object", t.name);
        assert.equal(t.inputSchema.additionalProperties, false, t.name);
        assert.ok(typeof t.description === "string" && t.description.length > 0, t.name);
      }
      const run = tools.find((t) => t.name === "sandbox_run");
      assert.deepEqual(run.inputSchema.required, ["command"]);
      assert.deepEqual(run.inputSchema.properties.profile.enum, ["permissive", "moderate", "restrictive"]);
    });

    await check("a looser profile than mcp-server's --max-profile (default moderate) is a tool error", async () => {
      const r = await call("sandbox_run", { command: ["echo", "ran"], profile: "permissive" });
      assert.equal(r.isError, true, text(r));
      assert.match(text(r), /at most moderate.*mcp-server --max-profile permissive/);
      const c = await call("sandbox_create", { name: `mcp-cap-${process.pid}`, profile: "permissive" });
      assert.equal(c.isError, true, text(c));
    });

    await check("ping", async () => {
      await client.ping();
    });

    await check("sandbox_run echo hello", async () => {
      const r = await call("sandbox_run", { command: ["echo", "hello"] });
      assert.equal(r.isError, false, text(r));
      assert.equal(r.structuredContent.exit_code, 0);
      assert.equal(r.structuredContent.stdout, "hello\n");
      assert.match(text(r), /hello/);
      assert.match(text(r), /exit_code: 0/);
    });

    await check("sandbox_run and sandbox_create take an image (resolved, or a tool error naming it)", async () => {
      const ok = await call("sandbox_run", { command: ["echo", "host image"], image: "host" });
      assert.equal(ok.isError, false, text(ok));
      assert.equal(ok.structuredContent.stdout, "host image\n");
      const r = await call("sandbox_run", { command: ["true"], image: "127.0.0.1:1/none:1" });
      assert.equal(r.isError, true, text(r));
      assert.match(text(r), /image 127\.0\.0\.1:1\/none:1/);
      const c = await call("sandbox_create", { name: `mcp-img-${process.pid}`, image: "127.0.0.1:1/none:1" });
      assert.equal(c.isError, true, text(c));
      assert.match(text(c), /127\.0\.0\.1:1\/none/);
      const l = await call("sandbox_list", {});
      assert.doesNotMatch(text(l), new RegExp(`mcp-img-${process.pid}`));
    });

    await check("sandbox_run restrictive exit 3", async () => {
      const r = await call("sandbox_run", { command: ["sh", "-c", "echo oops >&2; exit 3"], profile: "restrictive" });
      assert.equal(r.isError, false, text(r));
      assert.equal(r.structuredContent.exit_code, 3);
      assert.equal(r.structuredContent.stderr, "oops\n");
      assert.match(text(r), /exit_code: 3/);
    });

    await check("sandbox_run: env (object), cwd, fast, timeout_ms, network as agentkernel documents them", async () => {
      const r = await call("sandbox_run", { command: ["sh", "-c", 'echo "$A $B"; pwd'], env: { A: "one", B: "two words" },
        cwd: "/tmp", fast: true, timeout_ms: 60000, profile: "moderate" });
      assert.equal(r.isError, false, text(r));
      assert.equal(r.structuredContent.stdout, "one two words\n/tmp\n");
      const arr = await call("sandbox_run", { command: ["sh", "-c", 'echo "$C"'], env: ["C=from array"], fast: false });
      assert.equal(arr.structuredContent.stdout, "from array\n", text(arr));
      const hasDefault = (out) => out.split("\n").some((l) => l.split("\t")[1] === "00000000");
      const on = await call("sandbox_run", { command: ["cat", "/proc/net/route"], network: true });
      assert.ok(hasDefault(on.structuredContent.stdout), text(on));
      const off = await call("sandbox_run", { command: ["cat", "/proc/net/route"], network: false });
      assert.equal(off.isError, false, text(off));
      assert.ok(!hasDefault(off.structuredContent.stdout), text(off));
      const loosen = await call("sandbox_run", { command: ["true"], profile: "restrictive", network: true });
      assert.equal(loosen.isError, true, text(loosen));
      assert.match(text(loosen), /no network/);
      const slow = await call("sandbox_run", { command: ["sleep", "30"], timeout_ms: 500 });
      assert.equal(slow.isError, true, text(slow));
      assert.match(text(slow), /timeout_ms \(500 ms\)/);
      for (const bad of [{ timeout_ms: 0 }, { timeout_ms: "5" }, { env: ["NOEQUALS"] }, { env: { "A=B": "x" } },
        { env: [1] }, { env: "A=1" }, { cwd: "relative" }, { network: "no" }]) {
        const b = await call("sandbox_run", { command: ["true"], ...bad });
        assert.equal(b.isError, true, JSON.stringify(bad));
      }
    });

    await check("sandbox_create creates and starts: exec works at once, info says running", async () => {
      const r = await call("sandbox_create", { name: box, profile: "moderate" });
      assert.equal(r.isError, false, text(r));
      assert.match(text(r), new RegExp(box));
      assert.equal(r.structuredContent.status, "running");
      const e = await call("sandbox_exec", { name: box, command: ["echo", "ready"] });
      assert.equal(e.structuredContent.stdout, "ready\n", text(e));
      const i = await call("sandbox_info", { name: box });
      assert.equal(i.isError, false, text(i));
      assert.equal(i.structuredContent.name, box);
      assert.equal(i.structuredContent.status, "running");
      assert.equal(i.structuredContent.profile, "moderate");
      assert.deepEqual(i.structuredContent.labels, {});
      const s = await call("sandbox_start", { name: box });
      assert.equal(s.isError, true, "starting a running sandbox is an error");
    });

    await check("sandbox_exec with env (object and KEY=VALUE array) and workdir", async () => {
      const r = await call("sandbox_exec", {
        name: box, command: ["sh", "-c", 'echo "$GREETING"; pwd; exit 7'], env: { GREETING: "hi there" }, workdir: "/tmp",
      });
      assert.equal(r.isError, false, text(r));
      assert.equal(r.structuredContent.exit_code, 7);
      assert.equal(r.structuredContent.stdout, "hi there\n/tmp\n");
      const a = await call("sandbox_exec", { name: box, command: ["sh", "-c", 'echo "$X|$Y"'], env: ["X=1", "Y=a=b"] });
      assert.equal(a.structuredContent.stdout, "1|a=b\n", text(a));
      const bad = await call("sandbox_exec", { name: box, command: ["true"], env: ["NOEQUALS"] });
      assert.equal(bad.isError, true);
    });

    await check("sandbox_exec sudo runs as the sandbox's root (an unprivileged user's sandbox has none)", async () => {
      const r = await call("sandbox_exec", { name: box, command: ["id", "-u"], sudo: true });
      if (process.getuid() === 0) {
        assert.equal(r.structuredContent.stdout, "0\n", text(r));
      } else {
        assert.equal(r.isError, true, text(r));
        assert.match(text(r), /maps no uid 0/);
      }
      const u = await call("sandbox_exec", { name: box, command: ["id", "-u"], sudo: false });
      assert.notEqual(u.structuredContent.stdout, "0\n");
    });

    await check("sandbox_write_files: several files, relative ones in the working directory; a bad path writes none", async () => {
      const r = await call("sandbox_write_files", { name: box, files: { "/tmp/w1.txt": "one", "rel/w2.txt": "two" } });
      assert.equal(r.isError, false, text(r));
      assert.equal(r.structuredContent.written, 2);
      const c = await call("sandbox_exec", { name: box, command: ["sh", "-c", "cat /tmp/w1.txt rel/w2.txt"] });
      assert.equal(c.structuredContent.stdout, "onetwo");
      const bad = await call("sandbox_write_files", { name: box, files: { "/tmp/w3.txt": "x", "../escape": "y" } });
      assert.equal(bad.isError, true, text(bad));
      const none = await call("sandbox_exec", { name: box, command: ["sh", "-c", "ls /tmp/w3.txt 2>/dev/null | wc -l"] });
      assert.equal(none.structuredContent.stdout.trim(), "0");
    });

    await check("detached commands: exec_detach, exec_status, exec_logs, exec_list, exec_kill (by id alone)", async () => {
      const d = await call("sandbox_exec_detach", { name: box, command: ["sh", "-c", "echo d-out; echo d-err >&2; sleep 60"],
        env: ["D=1"], workdir: "/tmp" });
      assert.equal(d.isError, false, text(d));
      const id = d.structuredContent.id;
      assert.match(id, /^[0-9a-f]{16}$/);
      assert.equal(d.structuredContent.status, "running");
      let logs;
      for (let i = 0; i < 100; i++) {
        logs = await call("sandbox_exec_logs", { id });
        if (logs.structuredContent && logs.structuredContent.stdout && logs.structuredContent.stderr) break;
        await sleep(50);
      }
      assert.equal(logs.structuredContent.stdout, "d-out\n", text(logs));
      assert.equal(logs.structuredContent.stderr, "d-err\n");
      const errOnly = await call("sandbox_exec_logs", { id, stream: "stderr" });
      assert.equal(text(errOnly), "d-err\n");
      const st = await call("sandbox_exec_status", { id });
      assert.equal(st.structuredContent.status, "running", text(st));
      assert.equal(st.structuredContent.sandbox, box);
      const l = await call("sandbox_exec_list", { name: box });
      assert.ok(l.structuredContent.commands.some((c) => c.id === id), text(l));
      const all = await call("sandbox_exec_list", {});
      assert.ok(all.structuredContent.commands.some((c) => c.id === id), text(all));
      const k = await call("sandbox_exec_kill", { id, name: box });
      assert.equal(k.isError, false, text(k));
      assert.equal(k.structuredContent.status, "failed");
      const ps = await call("sandbox_exec", { name: box, command: ["sh", "-c", "ps -eo args | grep -c '[s]leep 60'"] });
      assert.equal(ps.structuredContent.stdout, "0\n");
      const done = await call("sandbox_exec_detach", { name: box, command: ["true"] });
      let s2;
      for (let i = 0; i < 100; i++) {
        s2 = await call("sandbox_exec_status", { id: done.structuredContent.id });
        if (s2.structuredContent.status !== "running") break;
        await sleep(50);
      }
      assert.equal(s2.structuredContent.status, "completed");
      assert.equal(s2.structuredContent.exit_code, 0);
      const none = await call("sandbox_exec_status", { id: "0123456789abcdef" });
      assert.equal(none.isError, true);
      const evil = await call("sandbox_exec_status", { id: "../../etc", name: box });
      assert.equal(evil.isError, true);
    });

    await check("sandbox_extend_ttl: by, and 1h when not given", async () => {
      const before = Date.now();
      const r = await call("sandbox_extend_ttl", { name: box, by: "30m" });
      assert.equal(r.isError, false, text(r));
      const t = Date.parse(r.structuredContent.expires_at);
      assert.ok(t >= before + 30 * 60000 - 2000 && t <= Date.now() + 30 * 60000 + 2000, r.structuredContent.expires_at);
      const d = await call("sandbox_extend_ttl", { name: box });
      assert.ok(Date.parse(d.structuredContent.expires_at) - t >= 3600000 - 2000, text(d));
      const i = await call("sandbox_info", { name: box });
      assert.equal(i.structuredContent.expires_at, d.structuredContent.expires_at);
      assert.equal((await call("sandbox_extend_ttl", { name: box, by: "soon" })).isError, true);
    });

    const content = "line one\nünïcode ✓\n";
    await check("sandbox_file_write", async () => {
      const r = await call("sandbox_file_write", { name: box, path: "/tmp/mcp-note.txt", content });
      assert.equal(r.isError, false, text(r));
      const c = await call("sandbox_exec", { name: box, command: ["cat", "/tmp/mcp-note.txt"] });
      assert.equal(c.structuredContent.stdout, content);
    });

    await check("sandbox_file_read", async () => {
      const r = await call("sandbox_file_read", { name: box, path: "/tmp/mcp-note.txt" });
      assert.equal(r.isError, false, text(r));
      assert.equal(text(r), content);
    });

    await check("sandbox_list shows it running", async () => {
      const r = await call("sandbox_list", {});
      assert.equal(r.isError, false, text(r));
      const mine = r.structuredContent.sandboxes.find((s) => s.name === box);
      assert.ok(mine, text(r));
      assert.equal(mine.status, "running");
      assert.match(text(r), new RegExp(box));
    });

    await check("sandbox_stop", async () => {
      const r = await call("sandbox_stop", { name: box });
      assert.equal(r.isError, false, text(r));
      const l = await call("sandbox_list", {});
      assert.equal(l.structuredContent.sandboxes.find((s) => s.name === box).status, "stopped");
    });

    await check("sandbox_start after stop", async () => {
      const r = await call("sandbox_start", { name: box });
      assert.equal(r.isError, false, text(r));
      const c = await call("sandbox_exec", { name: box, command: ["cat", "rel/w2.txt"] });
      assert.equal(c.structuredContent.stdout, "two", text(c));
    });

    await check("sandbox_remove (a running sandbox, as agentkernel does)", async () => {
      const r = await call("sandbox_remove", { name: box });
      assert.equal(r.isError, false, text(r));
      const l = await call("sandbox_list", {});
      assert.equal(l.structuredContent.sandboxes.find((s) => s.name === box), undefined);
    });

    await check("missing required argument is a tool error", async () => {
      const r = await call("sandbox_exec", { name: box });
      assert.equal(r.isError, true);
      assert.match(text(r), /command/);
    });

    await check("unknown argument and bad types are tool errors", async () => {
      assert.equal((await call("sandbox_run", { command: ["true"], bogus: 1 })).isError, true);
      assert.equal((await call("sandbox_run", { command: "true" })).isError, true);
      assert.equal((await call("sandbox_run", { command: ["true"], profile: "lax" })).isError, true);
    });

    await check("unknown sandbox is a tool error", async () => {
      const r = await call("sandbox_exec", { name: "no-such-sandbox", command: ["true"] });
      assert.equal(r.isError, true);
      assert.match(text(r), /no-such-sandbox/);
    });

    await check("unknown tool is a tool error", async () => {
      const r = await call("no_such_tool", {});
      assert.equal(r.isError, true);
    });
  } finally {
    await client.close();
  }
}

// Raw framing: write lines to the server ourselves and look at every byte
// it puts on stdout.
async function rawTests() {
  const lines = [
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}',
    '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    "{this is not json",
    '{"jsonrpc":"2.0","id":2,"method":"no/such/method"}',
    '{"jsonrpc":"1.0","id":3,"method":"ping"}',
    '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":[]}',
    '{"jsonrpc":"2.0","id":5,"method":"initialize","params":{"protocolVersion":"1999-01-01"}}',
    '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"sandbox_run","arguments":{"command":["sh","-c","printf \'\\\\377\\\\n\'; echo to-stderr >&2"]}}}',
    '{"jsonrpc":"2.0","id":7,"method":"ping"}',
  ];
  const child = spawn(AK, ["mcp-server"], { env, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  child.stdin.end(lines.join("\n") + "\n");
  const code = await new Promise((resolve) => child.on("close", resolve));

  await check("raw: server exits 0 at end of input", async () => assert.equal(code, 0, err));
  const outLines = out.split("\n");
  const lastLine = outLines.pop();
  await check("raw: stdout is only newline-terminated JSON lines", async () => {
    assert.equal(lastLine, "", "output ends with a newline");
    for (const l of outLines) assert.doesNotThrow(() => JSON.parse(l), `not JSON: ${l}`);
  });
  const msgs = outLines.map((l) => JSON.parse(l));
  const byId = (id) => msgs.find((m) => m.id === id);
  await check("raw: one reply per request, none for the notification", async () => {
    assert.equal(msgs.length, lines.length - 1);
    for (const m of msgs) assert.equal(m.jsonrpc, "2.0");
  });
  await check("raw: initialize echoes 2024-11-05", async () =>
    assert.equal(byId(1).result.protocolVersion, "2024-11-05"));
  await check("raw: malformed JSON is -32700 with id null", async () => {
    const m = msgs.find((x) => x.error && x.error.code === -32700);
    assert.ok(m, out);
    assert.equal(m.id, null);
  });
  await check("raw: unknown method is -32601", async () => assert.equal(byId(2).error.code, -32601));
  await check("raw: wrong jsonrpc version is -32600", async () => assert.equal(byId(3).error.code, -32600));
  await check("raw: params not an object is -32602", async () => assert.equal(byId(4).error.code, -32602));
  await check("raw: unknown protocol version gets 2025-06-18", async () =>
    assert.equal(byId(5).result.protocolVersion, "2025-06-18"));
  await check("raw: invalid UTF-8 output is replaced, stderr stays out of stdout", async () => {
    const r = byId(6).result;
    assert.equal(r.isError, false, JSON.stringify(r));
    assert.equal(r.structuredContent.stdout, "\ufffd\n");
    assert.equal(r.structuredContent.stderr, "to-stderr\n");
  });
  await check("raw: ping after all that", async () => assert.deepEqual(byId(7).result, {}));
}

// Calls run concurrently, and a cancelled call's command ends.  The server
// runs in a scratch directory: the permissive profile mounts it at
// /workspace, where the commands leave their marks.
async function concurrencyTests() {
  const cwd = mkdtempSync(join(tmpdir(), "ak-mcp-cwd-"));
  const transport = new StdioClientTransport({ command: AK, args: ["mcp-server", "--max-profile", "permissive"], env, cwd, stderr: "inherit" });
  const client = new Client({ name: "agentkernel-mcp-test", version: "1.0.0" });
  await client.connect(transport);
  try {
    await check("tool calls run concurrently", async () => {
      // Each waits until both have started: only concurrent calls finish.
      const wait = "touch /workspace/meet-$0; i=0; while [ $(ls /workspace | grep -c meet-) -lt 2 ]; do i=$((i+1)); [ $i -gt 300 ] && exit 9; sleep 0.05; done; echo $0";
      const [a, b] = await Promise.all(["a", "b"].map((x) =>
        client.callTool({ name: "sandbox_run", arguments: { command: ["sh", "-c", wait, x], profile: "permissive" } })));
      assert.equal(a.structuredContent.exit_code, 0, text(a));
      assert.equal(b.structuredContent.stdout, "b\n", text(b));
    });

    await check("calls on different sandboxes run concurrently", async () => {
      const names = ["a", "b"].map((x) => `mcp-cc-${x}-${process.pid}`);
      for (const n of names) {
        const c = await client.callTool({ name: "sandbox_create", arguments: { name: n, profile: "permissive" } });
        assert.equal(c.isError, false, text(c));
      }
      const wait = "touch /workspace/sbmeet-$0; i=0; while [ $(ls /workspace | grep -c sbmeet-) -lt 2 ]; do i=$((i+1)); [ $i -gt 300 ] && exit 9; sleep 0.05; done; echo $0";
      const res = await Promise.all(names.map((n, k) =>
        client.callTool({ name: "sandbox_exec", arguments: { name: n, command: ["sh", "-c", wait, "ab"[k]] } })));
      assert.equal(res[0].structuredContent.stdout, "a\n", text(res[0]));
      assert.equal(res[1].structuredContent.stdout, "b\n", text(res[1]));
      for (const n of names) await client.callTool({ name: "sandbox_remove", arguments: { name: n } });
    });

    await check("a cancelled call ends its command, and others go on", async () => {
      const hb = join(cwd, "hb");
      const ac = new AbortController();
      const p = client.callTool({ name: "sandbox_run", arguments: { profile: "permissive",
        command: ["sh", "-c", "while :; do date +%s%N > /workspace/hb; sleep 0.1; done"] } },
      undefined, { signal: ac.signal }).catch((e) => e);
      for (let i = 0; i < 50 && !existsSync(hb); i++) await sleep(100);
      assert.ok(existsSync(hb), "the command never ran");
      ac.abort("test");
      assert.ok((await p) instanceof Error);
      await sleep(1500);
      const before = readFileSync(hb, "utf8");
      await sleep(1000);
      assert.equal(readFileSync(hb, "utf8"), before, "the command still runs");
      const r = await client.callTool({ name: "sandbox_run", arguments: { command: ["echo", "still here"] } });
      assert.equal(r.structuredContent.stdout, "still here\n");
    });
  } finally {
    await client.close();
    rmSync(cwd, { recursive: true, force: true });
  }
}

// Pipelined calls: every line written at once, without waiting for an
// answer.  Calls on one sandbox keep their order (the remove sent right
// after the create does not run first); the answers say so.
async function pipelineTests() {
  const p = `mcp-pipe-${process.pid}`;
  const q = `mcp-pipe2-${process.pid}`;
  const tc = (id, name, args) => JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } });
  const lines = [
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"pipe","version":"0"}}}',
    '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    tc(10, "sandbox_create", { name: p }),
    tc(11, "sandbox_exec", { name: p, command: ["sh", "-c", "echo first > /tmp/order"] }),
    tc(12, "sandbox_exec", { name: p, command: ["sh", "-c", "echo second >> /tmp/order"] }),
    tc(13, "sandbox_exec", { name: p, command: ["cat", "/tmp/order"] }),
    tc(14, "sandbox_remove", { name: p }),
    tc(20, "sandbox_create", { name: q }),
    tc(21, "sandbox_remove", { name: q }),
  ];
  const child = spawn(AK, ["mcp-server"], { env, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  child.stdin.end(lines.join("\n") + "\n");
  const code = await new Promise((resolve) => child.on("close", resolve));
  const msgs = out.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const byId = (id) => msgs.find((m) => m.id === id);
  await check("pipelined: every call answered, each in order on its sandbox", async () => {
    assert.equal(code, 0, err);
    for (const id of [10, 11, 12, 13, 14, 20, 21]) {
      const m = byId(id);
      assert.ok(m && m.result, `no result for ${id}: ${out}`);
      assert.equal(m.result.isError, false, `${id}: ${JSON.stringify(m.result)}`);
    }
    assert.equal(byId(13).result.structuredContent.stdout, "first\nsecond\n");
    assert.ok(!existsSync(join(stateDir, "sandboxes", p)) && !existsSync(join(stateDir, "sandboxes", q)));
  });

  // Over 16 calls in flight, a call is refused at once (the reader never
  // stops reading: a cancellation may be next); the others are answered.
  const b = `mcp-busy-${process.pid}`;
  const busy = [
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"busy","version":"0"}}}',
    '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    tc(100, "sandbox_create", { name: b }),
  ];
  for (let i = 101; i <= 116; i++) busy.push(tc(i, "sandbox_exec", { name: b, command: ["sleep", "0.2"] }));
  const bc = spawn(AK, ["mcp-server"], { env, stdio: ["pipe", "pipe", "pipe"] });
  let bout = "";
  bc.stdout.on("data", (d) => (bout += d));
  bc.stdin.end(busy.join("\n") + "\n");
  const bcode = await new Promise((resolve) => bc.on("close", resolve));
  spawnSync(AK, ["remove", "--force", b], { env });
  await check("pipelined: the 17th call in flight is refused at once, the 16 others answered", async () => {
    assert.equal(bcode, 0);
    const bm = bout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const refused = bm.filter((m) => m.error && m.error.code === -32000);
    assert.equal(refused.length, 1, bout);
    assert.equal(refused[0].id, 116);
    assert.match(refused[0].error.message, /too many calls in flight/);
    for (let i = 100; i <= 115; i++) assert.ok(bm.find((m) => m.id === i && m.result && m.result.isError === false), `${i}: ${bout}`);
  });
}

try {
  await sdkTests();
  await concurrencyTests();
  await pipelineTests();
  await rawTests();
  console.log(`mcp-test: ${passed} checks passed${failedChecks ? `, ${failedChecks} failed` : ""}`);
  if (failedChecks) process.exitCode = 1;
} catch (e) {
  console.error(e);
  console.log(`mcp-test: FAILED after ${passed} checks`);
  process.exitCode = 1;
} finally {
  // Whatever a failed check left running.
  const dir = join(stateDir, "sandboxes");
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    if (!name.startsWith(".")) spawnSync(AK, ["remove", "--force", name], { env });
  }
  rmSync(stateDir, { recursive: true, force: true });
}
