'use strict';
// A small stand-in for the part of vitest's API the test suites use, so that a
// suite bundled with esbuild (`--alias:vitest=./scripts/vitest-shim.cjs`) runs
// on a plain Node where vitest itself cannot: Debian's arm64 Node 18 under
// qemu-aarch64 (vitest needs esbuild's native binary for that platform).
// scripts/test-arm64-node.sh runs test/parity.test.ts this way.
//
// describe/it/test (+ .each, .skip, .only, .todo), before/after hooks, expect
// with the common matchers, expect.fail. Tests run in order after the module
// that registered them has loaded. QK_TEST_FILTER=<regex> keeps only tests
// whose full name matches. An unknown matcher fails loudly.
const assert = require('assert');
const util = require('util');

const root = { name: '', children: [], hooks: { beforeAll: [], afterAll: [], beforeEach: [], afterEach: [] }, parent: null, skip: false };
let current = root;

function format(fmt, args, index) {
  let i = 0;
  let out = String(fmt).replace(/%([sdifjo#%])/g, (m, c) => {
    if (c === '%') return '%';
    if (c === '#') return String(index);
    const v = args[i++];
    if (c === 'd' || c === 'i') return String(c === 'i' ? Math.trunc(Number(v)) : Number(v));
    if (c === 'f') return String(Number(v));
    if (c === 'j' || c === 'o') return JSON.stringify(v);
    return typeof v === 'string' ? v : util.inspect(v);
  });
  if (args.length === 1 && args[0] && typeof args[0] === 'object' && !Array.isArray(args[0])) {
    out = out.replace(/\$([A-Za-z_][\w.]*)/g, (m, k) => {
      const v = k.split('.').reduce((o, p) => (o == null ? o : o[p]), args[0]);
      return v === undefined ? m : typeof v === 'string' ? v : util.inspect(v);
    });
  }
  return out;
}

function rowArgs(row) {
  return Array.isArray(row) ? row : [row];
}

function makeDescribe(skip) {
  const d = (name, fn) => {
    const suite = { name: String(name), children: [], hooks: { beforeAll: [], afterAll: [], beforeEach: [], afterEach: [] }, parent: current, skip: skip || current.skip };
    current.children.push(suite);
    const prev = current;
    current = suite;
    try {
      if (typeof fn === 'function') fn();
    } finally {
      current = prev;
    }
  };
  d.each = (table) => (name, fn) => table.forEach((row, i) => d(format(name, rowArgs(row), i), () => fn(...rowArgs(row))));
  return d;
}

function makeIt(skip) {
  const t = (name, fn, opts) => {
    const timeout = typeof opts === 'number' ? opts : opts && opts.timeout;
    current.children.push({ test: true, name: String(name), fn, skip: skip || current.skip || typeof fn !== 'function', timeout });
  };
  t.each = (table) => (name, fn, opts) => table.forEach((row, i) => t(format(name, rowArgs(row), i), () => fn(...rowArgs(row)), opts));
  return t;
}

const describe = makeDescribe(false);
describe.skip = makeDescribe(true);
describe.only = describe;
describe.concurrent = describe;
describe.sequential = describe;
describe.skipIf = (c) => (c ? describe.skip : describe);
describe.runIf = (c) => (c ? describe : describe.skip);
const it = makeIt(false);
it.skip = makeIt(true);
it.only = it;
it.concurrent = it;
it.sequential = it;
it.todo = (name) => it.skip(name);
it.skipIf = (c) => (c ? it.skip : it);
it.runIf = (c) => (c ? it : it.skip);
const test = it;

const hook = (kind) => (fn) => current.hooks[kind].push(fn);

// ---- expect --------------------------------------------------------------
function fail(message) {
  throw new assert.AssertionError({ message: String(message) });
}
const show = (v) => util.inspect(v, { depth: 4, maxArrayLength: 16, breakLength: Infinity });

const matchers = {
  toBe: (a, b) => [Object.is(a, b), `expected ${show(a)} to be ${show(b)}`],
  toEqual: (a, b) => [util.isDeepStrictEqual(a, b), `expected ${show(a)} to equal ${show(b)}`],
  toStrictEqual: (a, b) => [util.isDeepStrictEqual(a, b), `expected ${show(a)} to strictly equal ${show(b)}`],
  toBeTruthy: (a) => [!!a, `expected ${show(a)} to be truthy`],
  toBeFalsy: (a) => [!a, `expected ${show(a)} to be falsy`],
  toBeNull: (a) => [a === null, `expected ${show(a)} to be null`],
  toBeUndefined: (a) => [a === undefined, `expected ${show(a)} to be undefined`],
  toBeDefined: (a) => [a !== undefined, `expected ${show(a)} to be defined`],
  toBeNaN: (a) => [Number.isNaN(a), `expected ${show(a)} to be NaN`],
  toBeGreaterThan: (a, b) => [a > b, `expected ${show(a)} > ${show(b)}`],
  toBeGreaterThanOrEqual: (a, b) => [a >= b, `expected ${show(a)} >= ${show(b)}`],
  toBeLessThan: (a, b) => [a < b, `expected ${show(a)} < ${show(b)}`],
  toBeLessThanOrEqual: (a, b) => [a <= b, `expected ${show(a)} <= ${show(b)}`],
  toBeCloseTo: (a, b, digits = 2) => [Math.abs(a - b) < 10 ** -digits / 2, `expected ${show(a)} to be close to ${show(b)} (${digits} digits)`],
  toBeInstanceOf: (a, C) => [a instanceof C, `expected ${show(a)} to be an instance of ${C && C.name}`],
  toBeTypeOf: (a, t) => [typeof a === t, `expected typeof ${show(a)} to be ${t}`],
  toContain: (a, b) => [a != null && typeof a.includes === 'function' && a.includes(b), `expected ${show(a)} to contain ${show(b)}`],
  toHaveLength: (a, n) => [a != null && a.length === n, `expected length ${a && a.length} to be ${n}`],
  toHaveProperty: (a, k) => [a != null && String(k).split('.').reduce((o, p) => (o != null && p in Object(o) ? o[p] : undefined), a) !== undefined, `expected ${show(a)} to have property ${k}`],
  toMatch: (a, re) => [typeof re === 'string' ? String(a).includes(re) : re.test(String(a)), `expected ${show(a)} to match ${re}`],
  toMatchObject: (a, b) => [a != null && Object.keys(b).every((k) => util.isDeepStrictEqual(a[k], b[k])), `expected ${show(a)} to match ${show(b)}`],
  toThrow: (fn, want) => {
    let threw = false;
    let err;
    try {
      fn();
    } catch (e) {
      threw = true;
      err = e;
    }
    if (!threw) return [false, 'expected the function to throw'];
    return matchError(err, want);
  },
};
matchers.toThrowError = matchers.toThrow;
matchers.toEqualValues = matchers.toEqual;

function matchError(err, want) {
  if (want === undefined) return [true, 'expected the function not to throw'];
  const msg = err && err.message !== undefined ? String(err.message) : String(err);
  if (typeof want === 'string') return [msg.includes(want), `expected error '${msg}' to include '${want}'`];
  if (want instanceof RegExp) return [want.test(msg), `expected error '${msg}' to match ${want}`];
  if (typeof want === 'function') return [err instanceof want, `expected error ${show(err)} to be a ${want.name}`];
  if (typeof want === 'object') return [Object.keys(want).every((k) => util.isDeepStrictEqual(err[k], want[k])), `expected error ${show(err)} to match ${show(want)}`];
  return [false, 'unsupported toThrow argument'];
}

function expect(actual) {
  const build = (negate, mode) =>
    new Proxy(
      {},
      {
        get(_, name) {
          if (name === 'not') return build(!negate, mode);
          if (name === 'resolves') return build(negate, 'resolves');
          if (name === 'rejects') return build(negate, 'rejects');
          if (typeof name !== 'string' || name === 'then') return undefined;
          const m = matchers[name];
          if (!m) return () => fail(`vitest-shim: matcher '${name}' is not implemented (scripts/vitest-shim.cjs)`);
          const check = (value, args) => {
            const [pass, message] = m(value, ...args);
            if (pass === negate) fail(negate ? `not: ${message}` : message);
          };
          if (mode === 'resolves') return async (...args) => check(await actual, args);
          if (mode === 'rejects') {
            return async (...args) => {
              try {
                await actual;
              } catch (e) {
                if (name === 'toThrow' || name === 'toThrowError') {
                  const [pass, message] = matchError(e, args[0]);
                  if (pass === negate) fail(message);
                  return;
                }
                return check(e, args);
              }
              fail('expected the promise to reject');
            };
          }
          return (...args) => check(actual, args);
        },
      },
    );
  return build(false, null);
}
expect.fail = fail;
expect.assertions = () => {};
expect.hasAssertions = () => {};

// ---- the runner ----------------------------------------------------------
const filter = process.env.QK_TEST_FILTER ? new RegExp(process.env.QK_TEST_FILTER) : null;
const counts = { passed: 0, failed: 0, skipped: 0 };

function withTimeout(p, ms, name) {
  if (!ms || !p || typeof p.then !== 'function') return p;
  let timer;
  return Promise.race([p, new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`${name}: timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

function hooksChain(suite, kind) {
  const list = [];
  for (let s = suite; s; s = s.parent) list.unshift(...s.hooks[kind]);
  return kind === 'afterEach' ? list.reverse() : list;
}

async function runSuite(suite, prefix) {
  const full = (n) => (prefix ? `${prefix} > ${n}` : n);
  const selected = (node, name) => (node.test ? !filter || filter.test(name) : node.children.some((c) => selected(c, `${name} > ${c.name}`)));
  const kids = suite.children.filter((c) => selected(c, full(c.name)));
  if (!kids.length) return;
  for (const h of suite.hooks.beforeAll) await h();
  for (const c of kids) {
    const name = full(c.name);
    if (!c.test) {
      await runSuite(c, name);
      continue;
    }
    if (c.skip) {
      counts.skipped++;
      console.log(`  - ${name} (skipped)`);
      continue;
    }
    const t0 = process.hrtime.bigint();
    try {
      for (const h of hooksChain(suite, 'beforeEach')) await h();
      await withTimeout(c.fn(), c.timeout, name);
      for (const h of hooksChain(suite, 'afterEach')) await h();
      counts.passed++;
      console.log(`  ✓ ${name} ${Number((process.hrtime.bigint() - t0) / 1000000n)}ms`);
    } catch (e) {
      counts.failed++;
      console.log(`  ✗ ${name}\n      ${String((e && e.message) || e).split('\n').join('\n      ')}`);
    }
  }
  for (const h of suite.hooks.afterAll) await h();
}

setImmediate(async () => {
  const t0 = Date.now();
  try {
    await runSuite(root, '');
  } catch (e) {
    counts.failed++;
    console.log(`  ✗ (hook) ${(e && e.stack) || e}`);
  }
  const total = counts.passed + counts.failed;
  console.log(`Tests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  process.exitCode = counts.failed || total === 0 ? 1 : 0;
});

module.exports = {
  describe, it, test, expect,
  beforeAll: hook('beforeAll'), afterAll: hook('afterAll'), beforeEach: hook('beforeEach'), afterEach: hook('afterEach'),
  vi: new Proxy({}, { get: (_, k) => () => fail(`vitest-shim: vi.${String(k)} is not implemented`) }),
};
