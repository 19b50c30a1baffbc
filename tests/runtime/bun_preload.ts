/**
 * Lets `bun test` run the suite's `Deno.test` files, so the whole suite also runs
 * on Bun's runtime, the runtime of the binary users get (`scripts/test.ts`, the
 * Bun lane). It maps `Deno.test` (every call form, `ignore`, `t.step`) onto
 * `bun:test`; tests use no other `Deno.*` API.
 *
 * @module
 */
import { test } from "bun:test";

type TestFn = (t: TestContext) => unknown;
interface TestDefinition {
  name?: string;
  fn?: TestFn;
  ignore?: boolean;
  only?: boolean;
}
interface TestContext {
  name: string;
  step(nameOrDef: string | TestDefinition | TestFn, fn?: TestFn): Promise<boolean>;
}

function context(name: string): TestContext {
  const ctx: TestContext = {
    name,
    async step(nameOrDef, fn) {
      const def: TestDefinition = typeof nameOrDef === "string"
        ? { name: nameOrDef, fn }
        : typeof nameOrDef === "function"
        ? { name: nameOrDef.name, fn: nameOrDef }
        : nameOrDef;
      if (def.ignore) return false;
      await def.fn!(context(`${name} > ${def.name}`));
      return true;
    },
  };
  return ctx;
}

function register(
  a: string | TestDefinition | TestFn,
  b?: TestFn | Omit<TestDefinition, "name" | "fn">,
  c?: TestFn,
): void {
  let def: TestDefinition;
  if (typeof a === "string") {
    def = typeof b === "function" ? { name: a, fn: b } : { ...b, name: a, fn: c };
  } else if (typeof a === "function") def = { name: a.name, fn: a };
  else def = { ...a, fn: a.fn ?? (b as TestFn) };
  const name = def.name ?? "(unnamed)";
  if (def.ignore) test.skip(name, () => {});
  else test(name, async () => void await def.fn!(context(name)));
}

Object.defineProperty(globalThis, "Deno", { value: { test: register }, configurable: true });
