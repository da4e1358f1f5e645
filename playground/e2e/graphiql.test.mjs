// /graphiql: GraphiQL 5 loads from this origin alone, runs a query with a token from the
// headers editor, receives a subscription event over the WebSocket, passes axe, and fits a
// phone's width.
//
// The editors are Monaco: the test types into them as a person would (click, select all,
// type) and reads them back through the Monaco instance GraphiQL keeps on
// `globalThis.__MONACO`, since Monaco renders only the lines in view.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  assertAccessible,
  assertClean,
  changeOnLedger,
  gql,
  launch,
  open,
  screenshots,
  TOKEN,
} from "./browser.mjs";

const QUERY_EDITOR = ".graphiql-query-editor";
const HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden)";

let browser;
/** A property that exists, and its first owner as the owner register has them. */
let fixture;

before(async () => {
  browser = await launch();
  const data = await gql("{ properties(first: 1) { edges { node { id owners { owner { id } } } } } }");
  const node = data.properties.edges[0]?.node;
  assert.ok(node, "the replica holds no property to test with");
  const { owner } = await gql("query ($id: ID!) { owner(id: $id) { id name } }", { id: node.owners[0].owner.id });
  fixture = { id: node.id, owner };
});

after(async () => {
  await browser?.close();
});

/** Wait until GraphiQL shows its editors, filled with the default example. */
async function ready(page) {
  await page.locator(`${QUERY_EDITOR} .monaco-editor .view-lines`).waitFor({ timeout: 60_000 });
  await page.waitForFunction(() => globalThis.__MONACO?.editor.getModels().length >= 4, null, { timeout: 60_000 });
}

/** The text of the Monaco model whose URI ends with `name` (e.g. "response.json"). */
async function model(page, name) {
  return page.evaluate(
    (n) => globalThis.__MONACO.editor.getModels().find((m) => m.uri.path.endsWith(n))?.getValue() ?? null,
    name,
  );
}

/** Replace an editor's contents the way a person would. */
async function fill(page, editor, text) {
  await page.locator(`${editor} .monaco-editor .view-lines`).click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.press("Delete");
  // One input event for the whole text: no auto-closed brackets or quotes, no autocomplete.
  await page.keyboard.insertText(text);
}

/**
 * Wait until GraphiQL has taken in the operation editor's `text`: it reads the operation (its
 * name, for running) 100 ms after the last keystroke, then stores the text.
 */
async function settled(page, text) {
  await page.waitForFunction((t) => localStorage.getItem("graphiql:query") === t, text);
}

/** A new, empty tab. */
async function newTab(page) {
  const tabs = await page.locator(".graphiql-tab").count();
  await page.locator("button.graphiql-tab-add").click();
  await page.locator(".graphiql-tab").nth(tabs).waitFor();
}

/** Wait until the response editor's text matches `re`; resolves with that text. */
async function response(page, re, timeout = 30_000) {
  await page.waitForFunction(
    ([source, flags]) => {
      const text = globalThis.__MONACO.editor.getModels().find((m) => m.uri.path.endsWith("response.json"))?.getValue();
      return new RegExp(source, flags).test(text ?? "");
    },
    [re.source, re.flags],
    { timeout },
  );
  return model(page, "response.json");
}

/** Run the operation in the active tab and wait for a response matching `re`. */
async function run(page, re) {
  await page.locator("button.graphiql-execute-button").click();
  return response(page, re);
}

test("GraphiQL loads from this origin alone, with the examples and live data", async () => {
  const { page, context, problems } = await open(browser, "/graphiql");
  await ready(page);
  // The default tab is the first example, filled with a property that exists.
  assert.match(await model(page, "operation.graphql"), /query PropertyById/);
  assert.equal(JSON.parse(await model(page, "variables.json")).id, fixture.id);
  // The examples pane is open on a wide screen and lists today's examples.
  const examples = page.locator(".landql-examples button");
  assert.ok((await examples.count()) >= 10, "the examples pane lists the examples");
  // Picking one opens it in a new tab, with its variables.
  await examples.filter({ hasText: "Verify a property" }).click();
  await page.waitForFunction(() => document.querySelectorAll(".graphiql-tab").length === 2);
  const verify = await model(page, "operation.graphql");
  assert.match(verify, /verifyProperty/);
  await settled(page, verify);
  const verified = await run(page, /"outcome"/);
  assert.equal(JSON.parse(verified).data.verifyProperty.propertyId, fixture.id);
  // The schema reached the docs explorer (introspection over POST /graphql).
  await page.getByRole("button", { name: /documentation explorer/i }).click();
  await page.getByText("Root Types").waitFor();
  // Links back to the other pages.
  for (const name of ["landql", "Search", "Verify"]) {
    await page.locator("header.site nav").getByRole("link", { name, exact: true }).waitFor();
  }
  assertClean(problems);
  await context.close();
});

test("GraphiQL runs a query with the token from its headers editor", { skip: !TOKEN && "LANDQL_TOKEN is not set" }, async () => {
  const { page, context, problems } = await open(browser, "/graphiql");
  await ready(page);
  await newTab(page);
  const owners = `{ owners(name: ${JSON.stringify(fixture.owner.name)}, first: 20) { totalCount edges { node { id name } } } }`;
  await fill(page, QUERY_EDITOR, owners);
  await settled(page, owners);

  // Anonymous: the server says FORBIDDEN.
  const anonymous = await run(page, /"errors"|"owners"/);
  assert.match(anonymous, /FORBIDDEN/, anonymous);

  // With the token in the headers editor: data.
  await page.locator(".graphiql-editor-tools").getByRole("button", { name: "Headers" }).click();
  await fill(page, HEADERS_EDITOR, JSON.stringify({ Authorization: `Bearer ${TOKEN}` }));
  assert.equal(JSON.parse(await model(page, "request-headers.json")).Authorization, `Bearer ${TOKEN}`);
  const signedIn = await run(page, /"totalCount"/);
  const body = JSON.parse(signedIn);
  assert.equal(body.errors, undefined, signedIn);
  assert.ok(body.data.owners.totalCount >= 1, signedIn);
  assert.ok(body.data.owners.edges.some((e) => e.node.id === fixture.owner.id), signedIn);
  assertClean(problems);
  await context.close();
});

test("GraphiQL receives a subscription event over the WebSocket", async () => {
  const { page, context, problems } = await open(browser, "/graphiql");
  await ready(page);
  await newTab(page);
  const subscription = `subscription { propertyChanged(id: ${JSON.stringify(fixture.id)}) { event blockNumber } }`;
  await fill(page, QUERY_EDITOR, subscription);
  await settled(page, subscription);

  // The subscription is on once GraphiQL has sent `subscribe` on a same-origin WebSocket.
  const subscribed = new Promise((resolve) => {
    page.on("websocket", (ws) => {
      assert.equal(new URL(ws.url()).pathname, "/graphql");
      ws.on("framesent", (f) => {
        if (typeof f.payload === "string" && JSON.parse(f.payload).type === "subscribe") resolve();
      });
    });
  });
  await page.locator("button.graphiql-execute-button").click();
  await subscribed;
  // GraphiQL shows a stop button while the subscription runs.
  await page.getByRole("button", { name: /stop/i }).waitFor();

  const [receipt] = await changeOnLedger(fixture.id, "verified");
  assert.equal(receipt.validation, "VALID", JSON.stringify(receipt));
  // The event of this change (the pane shows the latest; another writer's could come first).
  const shown = await response(page, new RegExp(`"blockNumber": ${receipt.block_number}\\b`), 60_000);
  const event = JSON.parse(shown).data.propertyChanged;
  assert.equal(typeof event.event, "string", shown);
  assert.equal(event.blockNumber, receipt.block_number, shown);

  await page.getByRole("button", { name: /stop/i }).click();
  assertClean(problems);
  await context.close();
});

test("GraphiQL has no serious or critical accessibility violation", async () => {
  const { page, context, problems } = await open(browser, "/graphiql");
  await ready(page);
  // Two tabs, so that the tab strip has its close buttons too.
  await newTab(page);
  await assertAccessible(page, "graphiql");
  assertClean(problems);
  await context.close();
});

test("GraphiQL at phone and desktop widths", async () => {
  await screenshots(browser, "/graphiql", "graphiql", ready);
});

test("every example in the picker runs: no parse, validation or complexity error", async () => {
  const { page, context, problems } = await open(browser, "/graphiql");
  await ready(page);
  const examples = page.locator(".landql-examples button");
  const n = await examples.count();
  let ran = 0;
  for (let i = 0; i < n; i++) {
    const title = (await examples.nth(i).innerText()).trim();
    const tabs = await page.locator(".graphiql-tab").count();
    await examples.nth(i).click();
    await page.waitForFunction((t) => document.querySelectorAll(".graphiql-tab").length === t + 1, tabs);
    const operation = await model(page, "operation.graphql");
    // A subscription waits for a change; the subscription test covers one.
    if (/^\s*(#.*\n\s*)*subscription/.test(operation)) continue;
    await settled(page, operation);
    const text = await run(page, /"(data|errors)"/);
    const body = JSON.parse(text);
    const codes = (body.errors ?? []).map((e) => e.extensions?.code);
    for (const bad of ["GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "QUERY_TOO_COMPLEX", "BAD_USER_INPUT"]) {
      assert.ok(!codes.includes(bad), `example "${title}": ${text}`);
    }
    // Without a token, only the examples that say they need one may be refused.
    if (codes.includes("FORBIDDEN")) assert.match(title, /needs a .*token/i, `example "${title}": ${text}`);
    ran++;
  }
  assert.ok(ran >= 10, `only ${ran} examples ran`);
  assertClean(problems);
  await context.close();
});
