// `/verify`: a verifier (a bank, a court, a buyer) checks a property's ledger proof in the
// browser, trusting nothing this server says. The proof comes from this server by property
// ID (`verifyProperty`, also `?id=` — the property page links here) or from a file or paste;
// ./proof.js runs ledger.md's steps on it against an orderer key the verifier supplies (typed,
// or remembered on this device). Each step shows what it compared. Once loaded, the page
// needs no network: a saved proof is checked offline, and a fetched one can be saved.
import { h, replace } from "../shared/dom";
import { RequestError, gql } from "../shared/gql";
import { applyStatic, onLangChange, t } from "../shared/i18n";
import { mountLayout } from "../shared/layout";
import { parseJson, parseTrustedKey, verifyProof } from "./proof.js";
import type { StepResult, Verdict } from "./proof.js";
import "./strings";
import "./verify.css";

/** Where the trusted key is remembered (this device only). */
const PIN = "landql.verify.ordererKey";

type Outcome = "MATCH" | "MISMATCH" | "MISSING_IN_REPLICA" | "NOT_ON_LEDGER" | "LEDGER_UNAVAILABLE";

interface ServerAnswer {
  propertyId: string;
  outcome: Outcome;
  replicaRecordHash: string | null;
  detail: string | null;
  proof: { json: string } | null;
}

const QUERY = `query Verify($id: ID!) {
  verifyProperty(id: $id) { propertyId outcome replicaRecordHash detail proof { json } }
}`;

/** A proof in hand: its text exactly as received, and where it came from. */
interface Loaded {
  text: string | Uint8Array;
  origin: "server" | "file" | "paste";
  /** The file's name, or the property ID the server answered for. */
  name: string;
  /** For a fetched proof: the key step 5 checks, and the rest of the server's answer. */
  server?: ServerAnswer;
  asked?: string;
}

/** What the result area says instead of (or before) a verdict. */
type Note = { kind: "error" | "busy" | "info"; text: () => string } | null;

type KeySource = "typed" | "pinned" | "proof";

function readPin(): string {
  try {
    return localStorage.getItem(PIN) ?? "";
  } catch {
    return "";
  }
}

/** A hash (or other long value) shortened, with the whole on focus, in its title and copyable. */
function longValue(full: string, what: string): HTMLElement {
  if (full.length <= 24) return h("code", { class: "value" }, full);
  const short = `${full.slice(0, 10)}…${full.slice(-8)}`;
  const code = h("code", { class: "value hash", tabindex: 0, title: full }, short);
  code.addEventListener("focus", () => (code.textContent = full));
  code.addEventListener("blur", () => (code.textContent = short));
  const copy = h("button", { type: "button", class: "secondary copy", "aria-label": t("v.copyWhat", { what }) }, t("v.copy"));
  copy.addEventListener("click", () => {
    navigator.clipboard?.writeText(full).then(
      () => (copy.textContent = t("v.copied")),
      () => window.getSelection()?.selectAllChildren(code),
    );
  });
  return h("span", { class: "longvalue" }, code, copy);
}

export function mountVerify(): void {
  const main = mountLayout("verify");
  document.title = `${t("v.title")} — landql`;

  let loaded: Loaded | null = null;
  let verdict: Verdict | null = null;
  let note: Note = null;
  let keySource: KeySource = "typed";
  let keyNote: (() => string) | null = null;
  let keyNoteWarn = false;
  let seq = 0;

  // ---- the form ----

  const keyInput = h("input", {
    id: "orderer-key",
    name: "orderer-key",
    class: "mono",
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "key-help",
    maxlength: 200,
  });
  const keyNoteEl = h("p", { id: "key-note", role: "status" });
  const pinBtn = h("button", { type: "button", class: "secondary", id: "pin-key", "data-i18n": "v.key.pin" });
  const forgetBtn = h("button", { type: "button", class: "secondary", id: "forget-key", "data-i18n": "v.key.forget" });
  const fromProofBtn = h("button", {
    type: "button",
    class: "secondary",
    id: "key-from-proof",
    disabled: true,
    "aria-describedby": "key-from-proof-help",
    "data-i18n": "v.key.fromProof",
  });
  const keyForm = h(
    "form",
    { id: "key-form", class: "stack" },
    h("label", { for: "orderer-key", "data-i18n": "v.key.label" }),
    keyInput,
    h("p", { id: "key-help", class: "muted small", "data-i18n": "v.key.help" }),
    h("div", { class: "row" }, h("button", { type: "submit", id: "check-key", "data-i18n": "v.key.check" }), pinBtn, forgetBtn),
    keyNoteEl,
    h("div", { class: "row" }, fromProofBtn),
    h("p", { id: "key-from-proof-help", class: "muted small", "data-i18n": "v.key.fromProofHelp" }),
  );

  const idInput = h("input", {
    id: "property-id",
    name: "id",
    class: "mono",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "LRI-IND-TS-2026-03-00567",
  });
  const idForm = h(
    "form",
    { id: "id-form", class: "stack" },
    h("label", { for: "property-id", "data-i18n": "v.id.label" }),
    h("div", { class: "row" }, idInput, h("button", { type: "submit", id: "fetch-proof", "data-i18n": "v.id.fetch" })),
  );
  const fileInput = h("input", { id: "proof-file", type: "file", accept: ".json,application/json,text/plain" });
  const pasteArea = h("textarea", { id: "proof-text", class: "mono", rows: 6, spellcheck: "false" });
  const pasteForm = h(
    "form",
    { id: "paste-form", class: "stack" },
    h("label", { for: "proof-text", "data-i18n": "v.paste.label" }),
    pasteArea,
    h("div", { class: "row" }, h("button", { type: "submit", id: "check-paste", "data-i18n": "v.paste.check" })),
  );

  const verdictEl = h("div", { id: "verdict", class: "verdict", role: "status", "aria-live": "polite" });
  const resultBody = h("div", { id: "result-body" });

  replace(
    main,
    h("h1", { "data-i18n": "v.title" }),
    h("p", { class: "lede", "data-i18n": "v.intro" }),
    h("div", { class: "verify-grid" },
      h("section", { class: "card", "aria-labelledby": "key-h" }, h("h2", { id: "key-h", "data-i18n": "v.key.h" }), keyForm),
      h(
        "section",
        { class: "card", "aria-labelledby": "src-h" },
        h("h2", { id: "src-h", "data-i18n": "v.src.h" }),
        idForm,
        h("p", { class: "or", "data-i18n": "v.or" }),
        h("div", { class: "stack" }, h("label", { for: "proof-file", "data-i18n": "v.file.label" }), fileInput),
        pasteForm,
      ),
    ),
    h("section", { class: "card result", "aria-labelledby": "res-h" }, h("h2", { id: "res-h", "data-i18n": "v.res.h" }), verdictEl, resultBody),
  );
  applyStatic(main);

  // ---- the key ----

  const pinned = readPin();
  if (pinned) {
    keyInput.value = pinned;
    keySource = "pinned";
    keyNote = () => t("v.key.pinned");
  }

  keyInput.addEventListener("input", () => {
    keySource = keyInput.value.trim() === readPin() && readPin() ? "pinned" : "typed";
    keyNote = null;
    keyInput.removeAttribute("aria-invalid");
    renderKey();
  });
  keyForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void check();
  });
  pinBtn.addEventListener("click", () => {
    try {
      const key = parseTrustedKey(keyInput.value);
      localStorage.setItem(PIN, key);
      keyInput.value = key;
      keySource = "pinned";
      keyNote = () => t("v.key.pinned");
      keyNoteWarn = false;
    } catch (e) {
      keyNote = () => t("v.key.bad", { why: (e as Error).message });
      keyNoteWarn = true;
    }
    renderKey();
  });
  forgetBtn.addEventListener("click", () => {
    try {
      localStorage.removeItem(PIN);
    } catch {
      // nothing was kept
    }
    if (keySource === "pinned") keySource = "typed";
    keyNote = () => t("v.key.forgotten");
    keyNoteWarn = false;
    renderKey();
  });
  fromProofBtn.addEventListener("click", () => {
    const named = loaded && keyNamedIn(loaded.text);
    if (!named) return;
    keyInput.value = named;
    keySource = "proof";
    keyNote = () => t("v.key.notIndependent");
    keyNoteWarn = true;
    renderKey();
    void check();
  });

  function renderKey(): void {
    // A key copied out of the proof is not remembered: that would launder it into "trusted".
    pinBtn.disabled = keySource === "proof";
    fromProofBtn.disabled = !(loaded && keyNamedIn(loaded.text));
    keyNoteEl.className = keyNoteWarn ? "warn" : "muted";
    keyNoteEl.textContent = keyNote ? keyNote() : "";
  }

  // ---- the proof ----

  idForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void fetchProof(idInput.value);
  });
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files?.[0];
    if (!file) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    setLoaded({ text: bytes, origin: "file", name: file.name });
  });
  pasteForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!pasteArea.value.trim()) {
      loaded = null;
      verdict = null;
      note = { kind: "error", text: () => t("v.err.pasteEmpty") };
      render();
      pasteArea.focus();
      return;
    }
    setLoaded({ text: pasteArea.value, origin: "paste", name: "proof.json" });
  });

  async function fetchProof(raw: string): Promise<void> {
    const asked = raw.trim();
    const mine = ++seq;
    loaded = null;
    verdict = null;
    if (!asked) {
      note = { kind: "error", text: () => t("v.err.idEmpty") };
      render();
      idInput.focus();
      return;
    }
    history.replaceState(null, "", `${location.pathname}?id=${encodeURIComponent(asked)}`);
    note = { kind: "busy", text: () => t("v.loading", { id: asked }) };
    render();
    let answer: ServerAnswer;
    try {
      answer = (await gql<{ verifyProperty: ServerAnswer }>(QUERY, { id: asked })).verifyProperty;
    } catch (e) {
      if (mine !== seq) return;
      const message = e instanceof Error ? e.message : String(e);
      note =
        e instanceof RequestError && e.code === "BAD_USER_INPUT"
          ? { kind: "error", text: () => t("v.err.idBad", { message }) }
          : { kind: "error", text: () => t("v.err.request", { message }) };
      render();
      return;
    }
    if (mine !== seq) return;
    const id = answer.propertyId;
    const detail = answer.detail ?? "";
    if (answer.outcome === "NOT_ON_LEDGER") note = { kind: "error", text: () => t("v.err.unknown", { id }) };
    else if (answer.outcome === "LEDGER_UNAVAILABLE" && !answer.proof)
      note = { kind: "error", text: () => t("v.err.unavailable", { detail }) };
    else if (!answer.proof) note = { kind: "error", text: () => t("v.err.noProof", { id, detail }) };
    if (!answer.proof) {
      render();
      return;
    }
    setLoaded({ text: answer.proof.json, origin: "server", name: id, server: answer, asked });
  }

  function setLoaded(l: Loaded): void {
    loaded = l;
    verdict = null;
    note = null;
    renderKey();
    void check();
  }

  /** Runs the checker on the loaded proof with the key in the box. */
  async function check(): Promise<void> {
    if (!loaded) {
      render();
      return;
    }
    const key = keyInput.value.trim();
    const mine = ++seq;
    verdict = null;
    if (!key) {
      note = { kind: "error", text: () => t("v.key.missing") };
      keyInput.setAttribute("aria-invalid", "true");
      render();
      return;
    }
    note = { kind: "busy", text: () => t("v.checking") };
    render();
    const v = await verifyProof(loaded.text, { ordererKey: key, key: loaded.server?.propertyId ?? null });
    if (mine !== seq) return;
    if (v.error) {
      const why = v.error;
      note = { kind: "error", text: () => t("v.key.bad", { why }) };
      keyInput.setAttribute("aria-invalid", "true");
    } else {
      note = null;
      verdict = v;
      keyInput.removeAttribute("aria-invalid");
    }
    render();
    // On a phone the result is a screen or two below the buttons: bring the verdict up.
    verdictEl.scrollIntoView({ block: "nearest" });
  }

  // ---- the result ----

  function render(): void {
    verdictEl.removeAttribute("data-ok");
    verdictEl.removeAttribute("data-failed-step");
    verdictEl.className = "verdict";
    if (note) {
      verdictEl.classList.add(note.kind);
      verdictEl.setAttribute("aria-busy", String(note.kind === "busy"));
      replace(verdictEl, h("p", {}, note.text()));
    } else if (verdict) {
      verdictEl.removeAttribute("aria-busy");
      verdictEl.dataset.ok = String(verdict.ok);
      if (verdict.failedStep !== null) verdictEl.dataset.failedStep = String(verdict.failedStep);
      verdictEl.classList.add(verdict.ok ? (keySource === "proof" ? "warned" : "good") : "bad");
      replace(verdictEl, ...summary(verdict));
    } else {
      verdictEl.removeAttribute("aria-busy");
      replace(verdictEl, h("p", { class: "muted" }, t("v.res.none")));
    }
    replace(resultBody, ...(verdict && loaded ? details(verdict, loaded) : []));
  }

  function summary(v: Verdict): Node[] {
    const out: Node[] = [];
    if (v.ok) {
      out.push(h("p", { class: "headline" }, t("v.holds")));
      out.push(
        h("p", {}, t("v.holdsFor", { hash: v.recordHash ?? "", key: v.key ?? "", block: v.blockNumber ?? "", channel: v.channel ?? "" })),
      );
    } else {
      const n = v.failedStep ?? 0;
      out.push(h("p", { class: "headline" }, t("v.fails", { n, name: t(`v.s${n}`) })));
      if (n === 0 && /not JSON|not UTF-8/.test(v.why ?? "")) out.push(h("p", {}, t("v.notJson")));
    }
    if (keySource === "proof") out.push(h("p", { class: "warn strong" }, t("v.key.notIndependent")));
    return out;
  }

  function details(v: Verdict, l: Loaded): Node[] {
    const origin =
      l.origin === "server"
        ? t("v.from.server", { id: l.name })
        : l.origin === "file"
          ? t("v.from.file", { name: l.name })
          : t("v.from.paste");
    const out: Node[] = [h("p", { class: "muted" }, origin)];
    if (l.server && l.asked && l.asked.toUpperCase() !== l.server.propertyId)
      out.push(h("p", { class: "warn" }, t("v.idDiffers", { asked: l.asked, id: l.server.propertyId })));
    out.push(h("ol", { class: "steps" }, v.steps.map(stepItem)));
    out.push(h("div", { class: "row" }, h("button", { type: "button", class: "secondary", id: "download-proof", onclick: () => download(l) }, t("v.download"))));
    if (l.server) out.push(serverSays(l.server, v));
    return out;
  }

  function stepItem(s: StepResult): HTMLElement {
    const mark = s.status === "pass" ? "✓" : s.status === "fail" ? "✗" : "–";
    const rows: HTMLElement[] = [];
    // Step 0's counts are for the record, not a comparison worth showing.
    if (s.step > 0) {
      if (s.expected !== undefined) rows.push(h("div", {}, h("dt", {}, t("v.expected")), h("dd", {}, longValue(s.expected, `${t("v.s" + s.step)} — ${t("v.expected")}`))));
      if (s.actual !== undefined) rows.push(h("div", {}, h("dt", {}, t("v.actual")), h("dd", {}, longValue(s.actual, `${t("v.s" + s.step)} — ${t("v.actual")}`))));
    }
    const relation =
      s.step > 0 && s.expected !== undefined && s.actual !== undefined && s.step !== 2
        ? h("p", { class: "small muted" }, s.expected === s.actual ? `= ${t("v.same")}` : `≠ ${t("v.differ")}`)
        : null;
    return h(
      "li",
      { class: `step is-${s.status}`, "data-step": s.step, "data-status": s.status },
      h(
        "div",
        { class: "step-head" },
        h("span", { class: `badge is-${s.status}` }, h("span", { "aria-hidden": "true" }, mark), " ", t(`v.${s.status}`)),
        h("h3", {}, `${t("v.step", { n: s.step })}: ${t(`v.s${s.step}`)}`),
      ),
      h("p", { class: "muted small" }, t(`v.d${s.step}`)),
      rows.length ? h("dl", { class: "compared" }, rows) : null,
      relation,
      s.why ? h("p", { class: "why" }, h("strong", {}, `${t("v.why")}: `), h("span", { lang: "en" }, s.why)) : null,
    );
  }

  function serverSays(s: ServerAnswer, v: Verdict): HTMLElement {
    const outcome = t(`v.o.${s.outcome}`);
    const replica = s.replicaRecordHash;
    return h(
      "section",
      { class: "server", "aria-labelledby": "server-h" },
      h("h3", { id: "server-h" }, t("v.server.h")),
      h("p", {}, t("v.server.outcome", { outcome })),
      v.ok && replica
        ? h("p", { class: replica === v.recordHash ? "" : "warn" }, replica === v.recordHash ? t("v.server.same") : t("v.server.differs", { hash: replica }))
        : null,
    );
  }

  function download(l: Loaded): void {
    const blob = new Blob([l.text as BlobPart], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: l.origin === "server" ? `proof-${l.name}.json` : l.name });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  onLangChange(() => {
    document.title = `${t("v.title")} — landql`;
    renderKey();
    render();
  });

  renderKey();
  render();
  const id = new URLSearchParams(location.search).get("id");
  if (id) {
    idInput.value = id;
    void fetchProof(id);
  }
}

/** The signer's key a proof names (not trusted: offered with a warning), if it names one. */
function keyNamedIn(text: string | Uint8Array): string | null {
  try {
    const s = typeof text === "string" ? text : new TextDecoder("utf-8", { fatal: true }).decode(text);
    const doc = parseJson(s);
    const sig = doc instanceof Map ? doc.get("signature") : null;
    const key = sig instanceof Map ? sig.get("key") : null;
    return typeof key === "string" && /^[0-9a-fA-F]{64}$/.test(key) ? key.toLowerCase() : null;
  } catch {
    return null;
  }
}
