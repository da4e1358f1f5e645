// `/property/{id}`: one record in full — fields, owners, location, documents, every version
// as a timeline — with a badge saying where the answer came from and how fresh it is. It
// stays current: the `propertyChanged` subscription reloads it when the chain changes it,
// and a light poll keeps the freshness badge honest (and stands in when sockets fail).
import { h, replace } from "../../shared/dom";
import { RequestError } from "../../shared/gql";
import { onLangChange, t } from "../../shared/i18n";
import { mountLayout } from "../../shared/layout";
import { docTypeLabel, eventLabel, landTypeLabel, provenanceText, stateName, statusBadge, type Provenance } from "../common";
import { dateTime, indianNumber, rupees } from "../format";
import { subscribe } from "../live";
import { getToken, tokenBox } from "../token";
import { CHANGED, loadFreshness, loadHistory, loadOwnerProperties, loadProperty, type Changed, type OwnerProperties, type Property, type Version } from "./api";
import { timeline } from "./history";
import "./strings";
import "./property.css";

/** How often the freshness badge is re-checked (and, without a socket, changes looked for). */
const POLL_MS = 5000;
/** Safety stop for paging through history (100 pages of 20). */
const MAX_HISTORY_PAGES = 100;

type Holdings =
  | { k: "loading" }
  | { k: "forbidden" }
  | { k: "refused"; msg: string }
  | { k: "failed"; msg: string }
  | { k: "list"; data: OwnerProperties | null };

/** The ID from `/property/{id}` (URL-decoded), or `?id=` when opened as property.html. */
export function idFromLocation(): string {
  const raw = location.pathname.startsWith("/property/")
    ? location.pathname.slice("/property/".length)
    : (new URLSearchParams(location.search).get("id") ?? "");
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw; // a stray "%": show it as typed, the API will say what is wrong
  }
}

export function mountProperty(): void {
  const main = mountLayout("property");
  const id = idFromLocation();

  let prop: Property | null = null;
  let versions: Version[] = [];
  let historyLoading = false;
  let historyError: string | null = null;
  let failure: { title: string; detail: string[]; retry?: boolean } | null = null;
  let notFound = false;
  let mode: "live" | "poll" | null = null;
  let changeNote = "";
  const holdings = new Map<string, Holdings>();
  let loadSeq = 0;

  const head = h("div", { class: "prop-head" });
  const badge = h("p", { class: "prov", id: "prov-badge", role: "status" });
  const note = h("p", { class: "change-note", role: "status" });
  const body = h("div", { class: "prop-body" });
  const token = tokenBox(() => {
    // A new token may open what was refused: ask again for those owners.
    for (const [ownerId, s] of holdings) if (s.k === "forbidden" || s.k === "refused") void holdingsFor(ownerId);
  });
  token.hidden = true;
  replace(main, h("p", { class: "back" }, backLink()), head, badge, note, body, token);

  // ---- loading ----

  async function load(): Promise<void> {
    const seq = ++loadSeq;
    try {
      const p = await loadProperty(id);
      if (seq !== loadSeq) return;
      failure = null;
      if (!p) {
        notFound = true;
        prop = null;
        render();
        return;
      }
      notFound = false;
      prop = p;
      versions = p.history.nodes;
      historyError = null;
      render();
      await restOfHistory(p, seq);
    } catch (e) {
      if (seq !== loadSeq) return;
      if (prop) {
        // Keep what is shown; say the refresh failed.
        changeNote = message(e);
      } else if (e instanceof RequestError && e.code === "BAD_USER_INPUT") {
        failure = { title: t("p.badIdTitle"), detail: [e.message, t("p.badIdForms")] };
      } else {
        failure = { title: t("p.failedTitle"), detail: [message(e)], retry: true };
      }
      render();
    }
  }

  /** Page through the versions after the first page, drawing as they come. */
  async function restOfHistory(p: Property, seq: number): Promise<void> {
    let info = p.history.pageInfo;
    historyLoading = info.hasNextPage;
    for (let i = 0; info.hasNextPage && info.endCursor && i < MAX_HISTORY_PAGES; i++) {
      try {
        const page = await loadHistory(p.id, info.endCursor);
        if (seq !== loadSeq) return;
        versions = versions.concat(page.nodes);
        info = page.pageInfo;
      } catch (e) {
        historyError = message(e);
        break;
      }
      renderHistory();
    }
    historyLoading = false;
    renderHistory();
  }

  async function holdingsFor(ownerId: string): Promise<void> {
    holdings.set(ownerId, { k: "loading" });
    renderOwners();
    let s: Holdings;
    try {
      s = { k: "list", data: await loadOwnerProperties(ownerId, getToken()) };
    } catch (e) {
      const code = e instanceof RequestError ? e.code : "";
      s =
        code === "FORBIDDEN"
          ? { k: "forbidden" }
          : code === "UNAUTHENTICATED"
            ? { k: "refused", msg: message(e) }
            : { k: "failed", msg: message(e) };
    }
    holdings.set(ownerId, s);
    renderOwners();
    if (s.k === "forbidden" || s.k === "refused") token.querySelector("input")?.focus();
  }

  // ---- staying current ----

  let stopLive: (() => void) | null = null;
  function watch(canonical: string): void {
    if (stopLive) return;
    mode = "live";
    renderBadge();
    stopLive = subscribe<Changed>(CHANGED, { id: canonical }, {
      next: (d) => {
        changeNote = t("p.changed", { event: eventLabel(d.propertyChanged.event), n: indianNumber(d.propertyChanged.blockNumber) });
        void load();
      },
      failed: () => {
        mode = "poll";
        renderBadge();
      },
    });
    const poll = async () => {
      if (prop && !document.hidden) {
        try {
          const f = await loadFreshness(prop.id);
          if (f && prop && (f.updatedAt !== prop.updatedAt || f.provenance.txId !== prop.provenance.txId)) await load();
          else if (f && prop) {
            prop.provenance = f.provenance;
            renderBadge();
          }
        } catch {
          // the next poll tries again; the badge keeps its last known state
        }
      }
      window.setTimeout(poll, POLL_MS);
    };
    window.setTimeout(poll, POLL_MS);
  }

  // ---- drawing ----

  function render(): void {
    document.title = `${prop?.id ?? id} · landql`;
    if (failure || notFound || !prop) {
      token.hidden = true;
      replace(badge);
      replace(body);
      if (failure) {
        replace(
          head,
          h("h1", {}, failure.title),
          h("p", {}, h("code", {}, id)),
          failure.detail.map((d, i) => h("p", { class: i === 0 ? "error" : "muted", role: i === 0 ? "alert" : null }, d)),
          failure.retry ? h("button", { type: "button", onclick: () => void load() }, t("p.retry")) : null,
        );
      } else if (notFound) {
        replace(
          head,
          h("h1", {}, t("p.notFoundTitle")),
          h("p", { role: "alert" }, t("p.notFound", { id })),
          h("p", {}, h("a", { href: `/search?q=${encodeURIComponent(id)}` }, t("p.searchFor", { q: id }))),
        );
      } else replace(head, h("h1", {}, h("code", {}, id)), h("p", { class: "muted", role: "status" }, t("p.loading")));
      return;
    }
    const p = prop;
    token.hidden = false;
    replace(
      head,
      h("h1", { class: "prop-title" }, h("span", { class: "visually-hidden" }, `${t("p.id")}: `), h("code", {}, p.id)),
      h(
        "div",
        { class: "prop-actions" },
        statusBadge(p.verificationStatus),
        h("a", { class: "button", href: `/verify?id=${encodeURIComponent(p.id)}` }, t("p.verify")),
      ),
    );
    renderBadge();
    replace(note, changeNote);
    const loc = p.location;
    replace(
      body,
      h(
        "div",
        { class: "prop-grid" },
        section("record", t("p.record"), dl([
          [t("p.state"), `${stateName(p.state)} (${p.state})`],
          [t("p.year"), String(p.year)],
          [t("p.shardSeq"), `${p.shard == null ? t("p.noShard") : String(p.shard).padStart(2, "0")} / ${p.sequence}`],
          [t("p.survey"), p.surveyNo],
          [t("p.khata"), p.khataNo ?? "—"],
          [t("p.area"), h("span", {}, p.areaText, h("span", { class: "muted" }, ` · ${t("p.sqm", { n: indianNumber(p.areaSqM) })}`))],
          [t("p.landType"), landTypeLabel(p.landType)],
          [t("p.value"), h("span", { class: "money" }, rupees(p.marketValue))],
          [t("p.status"), statusBadge(p.verificationStatus)],
          [t("p.created"), dateTime(p.createdAt)],
          [t("p.updated"), dateTime(p.updatedAt)],
        ])),
        section(
          "location",
          t("p.location"),
          dl([
            [t("p.village"), loc.village],
            [t("p.mandal"), loc.mandal],
            [t("p.district"), loc.district],
            [t("p.state"), stateName(loc.state)],
          ]),
          h("p", {}, h("a", { href: `/search?q=${encodeURIComponent(loc.village)}` }, t("p.searchVillage", { village: loc.village }))),
        ),
      ),
      section("owners", t("p.owners"), h("ul", { class: "owners", id: "owners-list" })),
      section(
        "documents",
        t("p.documents"),
        p.documents.length
          ? h(
              "ul",
              { class: "docs" },
              p.documents.map((d) =>
                h(
                  "li",
                  { class: "doc" },
                  h("strong", {}, docTypeLabel(d.docType)),
                  " ",
                  h("span", { class: "muted" }, `${t("p.linkedAt")} ${dateTime(d.linkedAt)}`),
                  dl([
                    [t("p.docHash"), h("code", { class: "hash" }, d.docHash)],
                    [t("p.tx"), h("code", { class: "hash" }, d.txId)],
                  ]),
                ),
              ),
            )
          : h("p", { class: "muted" }, t("p.noDocuments")),
      ),
      section("history", t("p.history"), h("div", { id: "history-box" })),
      section("provenance", t("p.provenance"), h("div", { id: "prov-details" })),
    );
    renderOwners();
    renderHistory();
    renderBadge();
  }

  function renderBadge(): void {
    if (!prop) return;
    const pv = prop.provenance;
    const { text, tone } = provenanceText(pv);
    const label = text;
    // Only touch the live region when its words change, so it is announced once.
    if (badge.dataset.text !== label) {
      badge.dataset.text = label;
      badge.className = `prov ${tone}`;
      replace(badge, h("span", { class: "dot", "aria-hidden": "true" }), label);
    }
    const details = body.querySelector("#prov-details");
    if (details) replace(details, provenanceDetails(pv));
  }

  function provenanceDetails(pv: Provenance): HTMLElement[] {
    return [
      dl([
        [t("p.source"), t(`p.source${pv.source}`)],
        [t("p.chan"), h("code", {}, pv.channel)],
        [t("p.blockNo"), indianNumber(pv.blockNumber)],
        [t("p.tx"), h("code", { class: "hash" }, pv.txId)],
        [t("p.recordHash"), h("code", { class: "hash" }, pv.recordHash)],
        [t("p.indexedAt"), dateTime(pv.indexedAt)],
        [t("p.lag"), pv.replicaLagBlocks < 0 ? t("p.lagUnknown") : indianNumber(pv.replicaLagBlocks)],
      ]),
      h("p", { class: "small muted" }, mode === "live" ? [h("span", { class: "live-dot", "aria-hidden": "true" }), t("p.live")] : mode === "poll" ? t("p.polling") : ""),
    ];
  }

  function renderHistory(): void {
    const box = body.querySelector("#history-box");
    if (!box || !prop) return;
    const n = versions.length;
    replace(
      box,
      h("p", { class: "muted" }, n === 1 ? t("p.historyCount1") : t("p.historyCount", { n: indianNumber(n) })),
      timeline(versions, prop.provenance.txId),
      historyLoading ? h("p", { class: "muted", role: "status" }, t("p.historyLoading")) : null,
      historyError ? h("p", { class: "error", role: "alert" }, t("p.historyFailed", { msg: historyError })) : null,
    );
  }

  function renderOwners(): void {
    const ul = body.querySelector("#owners-list");
    if (!ul || !prop) return;
    replace(
      ul,
      prop.owners.map(({ owner, sharePct }) => {
        const s = holdings.get(owner.id);
        const panelId = `holdings-${owner.id.replace(/[^\w-]/g, "_")}`;
        return h(
          "li",
          { class: "owner-card card" },
          h("p", { class: "owner-name" }, h("strong", {}, owner.name)),
          dl([
            [t("p.father"), owner.fatherName ?? "—"],
            [t("p.share"), `${sharePct}%`],
          ]),
          h(
            "button",
            {
              type: "button",
              class: "secondary small-btn",
              "aria-controls": panelId,
              "aria-expanded": s ? "true" : "false",
              onclick: () => void holdingsFor(owner.id),
            },
            t("p.ownerHoldings"),
          ),
          h("div", { id: panelId, class: "holdings", "aria-live": "polite" }, s ? holdingsView(s) : null),
        );
      }),
    );
  }

  function holdingsView(s: Holdings): HTMLElement {
    switch (s.k) {
      case "loading":
        return h("p", { class: "muted" }, t("p.ownerLoading"));
      case "forbidden":
        return h("p", { class: "role-needed warn" }, h("a", { href: "#token-box" }, t("p.ownerNeedsRole")));
      case "refused":
        return h("p", { class: "error" }, t("p.ownerRefused", { msg: s.msg }));
      case "failed":
        return h("p", { class: "error" }, t("p.ownerFailed", { msg: s.msg }));
      case "list": {
        const d = s.data;
        if (!d || d.nodes.length === 0) return h("p", { class: "muted" }, t("p.ownerNone"));
        return h(
          "div",
          {},
          h("p", { class: "muted small" }, d.totalCount === 1 ? t("p.ownerCount1") : t("p.ownerCount", { n: indianNumber(d.totalCount) })),
          h(
            "ul",
            { class: "holdings-list" },
            d.nodes.map((n) =>
              h(
                "li",
                {},
                h("a", { href: `/property/${encodeURIComponent(n.id)}` }, h("code", {}, n.id)),
                ` · ${n.surveyNo} · ${n.location.village}, ${n.location.mandal}`,
              ),
            ),
          ),
        );
      }
    }
  }

  onLangChange(render);
  render();
  void load().then(() => {
    if (prop) watch(prop.id);
  });
}

function section(key: string, title: string, ...content: (Node | null)[]): HTMLElement {
  return h("section", { class: `card sec-${key}`, "aria-labelledby": `${key}-h` }, h("h2", { id: `${key}-h` }, title), content);
}

function dl(rows: [string, string | Node][]): HTMLElement {
  return h("dl", { class: "fields" }, rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
}

/** Back to the search the reader came from (keeping its state), else to a fresh one. */
function backLink(): HTMLElement {
  const ref = document.referrer ? new URL(document.referrer) : null;
  const fromSearch = ref?.origin === location.origin && ref.pathname === "/search";
  return h(
    "a",
    {
      href: fromSearch ? ref.pathname + ref.search : "/search",
      onclick: (e: Event) => {
        if (fromSearch && history.length > 1) {
          e.preventDefault();
          history.back();
        }
      },
    },
    h("span", { "aria-hidden": "true" }, "← "),
    h("span", { "data-i18n": "p.back" }, t("p.back")),
  );
}

function message(e: unknown): string {
  return e instanceof RequestError ? e.message : e instanceof Error ? e.message : String(e);
}
