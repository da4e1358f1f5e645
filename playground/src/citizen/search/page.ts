// `/search`: one box that answers as you type. Each keystroke waits 150 ms for the next and
// aborts the request in flight, so only the latest text is ever shown; the text and filters
// live in the URL (typing replaces the history entry, choosing a filter adds one, so Back
// undoes a filter). Enter on something that means a property ID opens its page. Keyboard:
// `/` focuses the box, ↓/↑ walk the results, Enter opens one, Esc returns to the box.
import { h, replace } from "../../shared/dom";
import { RequestError } from "../../shared/gql";
import { applyStatic, onLangChange, t } from "../../shared/i18n";
import { mountLayout } from "../../shared/layout";
import { indianNumber } from "../format";
import { meansId, propertyHref } from "../ids";
import { search, type Hit, type SearchPage } from "./api";
import { chips, facetPanel, learnLabels, type FacetActions } from "./facets";
import { hitItem, legend } from "./results";
import { fromUrl, toUrl, withPlace, without, type SearchState } from "./state";
import "./strings";

/** Wait after a keystroke before asking: a burst of keys (a fast typist, a paste) sends one
 * request, while a person typing at 100–300 ms a key sees results after each word part.
 * Part of the "first results painted ≤ 150 ms after the last key" budget (`bench pages`). */
const DEBOUNCE_MS = 60;
/** Say "Searching…" only when an answer takes longer than this, so fast answers don't flicker. */
const SLOW_MS = 350;
/** Example searches for the empty page: a spelling variant, three scripts, a place, a survey number. */
const EXAMPLES = ["Laxmi Reddy", "శ్రీనివాస్", "ಲಕ್ಷ್ಮಿ", "रमेश", "Rangareddy", "Srinivas Naidu"];

interface Answer {
  /** `toUrl` of the state it answers. */
  key: string;
  first: SearchPage;
  hits: Hit[];
  next: string | null;
}

export function mountSearch(): void {
  const main = mountLayout("search");
  let state: SearchState = fromUrl();
  let answer: Answer | null = null;
  /** What went wrong, as the reader sees it; `retry` when asking again may help. */
  let error: { text: () => string; retry?: () => void } | null = null;
  let loading = false;
  let slow = false;
  let loadingMore = false;
  let ctrl: AbortController | null = null;
  let debounce = 0;
  let slowTimer = 0;
  let facetsOpen = false;

  // ---- the frame (built once; `render` fills it) ----
  const input = h("input", {
    id: "q",
    name: "q",
    type: "search",
    autocomplete: "off",
    autocapitalize: "off",
    spellcheck: "false",
    enterkeyhint: "search",
    "aria-describedby": "q-hint id-note",
    "aria-controls": "results",
    "data-i18n-placeholder": "s.placeholder",
  });
  input.value = state.q;
  const spinner = h("span", { class: "spinner", "aria-hidden": "true", hidden: true });
  const form = h(
    "form",
    { role: "search", class: "search-form", action: "/search", onsubmit: (e: Event) => (e.preventDefault(), void submit()) },
    h("label", { for: "q", class: "search-label", "data-i18n": "s.label" }),
    h("div", { class: "search-row" }, h("div", { class: "input-wrap" }, input, spinner), h("button", { type: "submit", "data-i18n": "s.submit" })),
    h("p", { id: "q-hint", class: "muted small", "data-i18n": "s.hint" }),
  );
  const idNote = h("p", { id: "id-note", class: "id-note" });
  const chipsBox = h("div", { class: "chips-box" });
  const facetsToggle = h("button", {
    type: "button",
    class: "secondary facets-toggle",
    "aria-expanded": "false",
    "aria-controls": "facets",
    onclick: () => {
      facetsOpen = !facetsOpen;
      render();
    },
  });
  const facetsBox = h("div", { id: "facets", class: "facets" });
  const status = h("p", { id: "status", class: "status", role: "status", "aria-live": "polite" });
  const alertBox = h("div", { class: "alert-box" });
  const list = h("ol", { id: "results", class: "results", "aria-labelledby": "results-h" });
  const below = h("div", { class: "below" });
  const legendBox = h("div", {});
  const moreBtn = h("button", { type: "button", class: "secondary more", hidden: true, onclick: () => void loadMore() });
  // Anonymous readers get one page of a broad search (the server says NARROW_OR_SIGN_IN
  // for the next): said here in the reader's language, in place of the button.
  const narrowNote = h("p", { class: "narrow muted", hidden: true, role: "status" });
  let narrowFor: string | null = null;
  const keysHint = h("p", { class: "muted small keys", "data-i18n": "s.keys" });
  replace(
    main,
    h("h1", { "data-i18n": "s.title" }),
    form,
    idNote,
    chipsBox,
    h(
      "div",
      { class: "search-body" },
      h("aside", { class: "facets-col", "aria-labelledby": "facets-h" }, h("h2", { id: "facets-h", class: "visually-hidden", "data-i18n": "s.filters" }), facetsToggle, facetsBox),
      h(
        "section",
        { class: "results-col", "aria-labelledby": "results-h" },
        h("h2", { id: "results-h", class: "visually-hidden", "data-i18n": "s.resultsLabel" }),
        status,
        alertBox,
        list,
        below,
        moreBtn,
        narrowNote,
        legendBox,
        keysHint,
      ),
    ),
  );
  const bodyEl = main.querySelector<HTMLElement>(".search-body")!;
  applyStatic(main);

  // ---- asking the server ----

  /** Search for `state` now; resolves to its first page (null when cancelled, empty or failed). */
  async function run(): Promise<SearchPage | null> {
    window.clearTimeout(debounce);
    ctrl?.abort();
    const mine = new AbortController();
    ctrl = mine;
    error = null;
    const asked = { ...state, filters: { ...state.filters } };
    if (!asked.q.trim()) {
      answer = null;
      loading = false;
      render();
      return null;
    }
    loading = true;
    slow = false;
    window.clearTimeout(slowTimer);
    slowTimer = window.setTimeout(() => {
      slow = true;
      render();
    }, SLOW_MS);
    render();
    try {
      const page = await search(asked, null, mine.signal);
      if (ctrl !== mine) return null;
      learnLabels(asked, page.facets, page.hits);
      answer = { key: toUrl(asked), first: page, hits: page.hits, next: page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null };
      return page;
    } catch (e) {
      if (ctrl !== mine || (e as Error).name === "AbortError") return null;
      error = failure(e, () => void run());
      return null;
    } finally {
      if (ctrl === mine) {
        loading = false;
        window.clearTimeout(slowTimer);
        render();
      }
    }
  }

  async function loadMore(): Promise<void> {
    if (!answer?.next || loadingMore) return;
    const a = answer;
    const mine = ctrl ?? new AbortController();
    loadingMore = true;
    render();
    try {
      const page = await search(fromKey(a.key), a.next, mine.signal);
      if (answer !== a) return;
      const start = a.hits.length;
      a.hits = a.hits.concat(page.hits);
      a.next = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
      // Append rather than re-render, so focus and scroll stay where the reader is.
      for (const [i, hit] of page.hits.entries()) list.appendChild(hitItem(hit, start + i));
      error = null;
    } catch (e) {
      if (e instanceof RequestError && e.code === "NARROW_OR_SIGN_IN") narrowFor = a.key;
      else if ((e as Error).name !== "AbortError") error = failure(e, () => void loadMore());
    } finally {
      loadingMore = false;
      render(false);
    }
  }

  /** Enter: an ID goes to its page (the canonical ID when the search found it); else search now. */
  async function submit(): Promise<void> {
    state = { ...state, q: input.value };
    history.replaceState(null, "", toUrl(state));
    if (!meansId(state.q)) {
      if (!answer || answer.key !== toUrl(state) || error) await run();
      return;
    }
    const page = answer && answer.key === toUrl(state) && !loading ? answer.first : await run();
    const hit = page?.hits.find((x) => x.highlights.some((hl) => hl.field === "id"));
    location.assign(propertyHref(hit ? hit.property.id : state.q));
  }

  /** Change the search (a filter, an example, Back/Forward): re-ask now, optionally as a new history entry. */
  function go(next: SearchState, push: boolean): void {
    state = next;
    if (input.value !== state.q) input.value = state.q;
    if (push) history.pushState(null, "", toUrl(state));
    void run();
  }

  const act: FacetActions = {
    choosePlace: (level, value) => go(withPlace(state, level, value), true),
    toggle: (key, value) => go(state.filters[key] === value ? without(state, key) : { ...state, filters: { ...state.filters, [key]: value } }, true),
    remove: (key) => go(without(state, key), true),
    clear: () => go({ ...state, filters: {} }, true),
  };

  // ---- drawing ----

  /** Redraw everything from the state; `list` only when `withList` (load-more appends itself). */
  function render(withList = true): void {
    document.title = state.q.trim() ? `${state.q.trim()} — ${t("s.title")} — landql` : `${t("s.title")} — landql`;
    spinner.hidden = !loading && !loadingMore;
    list.setAttribute("aria-busy", loading ? "true" : "false");
    // Which text the shown results answer (tests wait on it; it is also handy when debugging).
    list.dataset.q = answer ? (fromKey(answer.key).q.trim()) : "";
    list.classList.toggle("stale", loading && !!answer);
    // While a new answer is on its way the last one stays, dimmed (`.stale`).
    const current = answer;

    // The status line: what is known, said once (it is a live region).
    if (!state.q.trim()) replace(status, "");
    else if (loading && (slow || !current)) replace(status, t("s.searching"));
    else if (current) {
      const n = current.first.total;
      replace(
        status,
        h("strong", {}, n === 1 ? t("s.count1") : t("s.count", { n: indianNumber(n) })),
        current.hits.length < n && current.hits.length > 0 ? ` · ${t("s.showing", { shown: indianNumber(current.hits.length) })}` : "",
      );
    } else replace(status, ""); // no answer (a failure): the alert says what happened

    replace(
      alertBox,
      error
        ? h(
            "div",
            { class: "alert", role: "alert" },
            h("p", {}, error.text()),
            error.retry ? h("button", { type: "button", class: "secondary", onclick: error.retry }, t("s.retry")) : null,
          )
        : null,
    );

    const idHit = current?.hits.some((x) => x.highlights.some((hl) => hl.field === "id"));
    replace(idNote, meansId(state.q) ? (idHit ? t("s.idFound") : t("s.idEnter")) : "");

    replace(chipsBox, chips(state, act));
    const nFilters = Object.keys(state.filters).length;
    replace(facetsToggle, t("s.filters"), nFilters ? ` (${nFilters})` : "");
    facetsToggle.setAttribute("aria-expanded", String(facetsOpen));
    facetsBox.classList.toggle("open", facetsOpen);
    replace(facetsBox, current?.first.facets && state.q.trim() ? facetPanel(state, current.first.facets, act) : null);
    facetsToggle.hidden = !current?.first.facets || !state.q.trim();
    // Without facets (nothing asked yet) the results column takes the whole width.
    bodyEl.classList.toggle("no-facets", facetsToggle.hidden);
    keysHint.hidden = !current?.hits.length || !state.q.trim();

    if (withList) {
      if (!state.q.trim()) {
        replace(list);
        replace(below, startScreen());
      } else if (current) {
        replace(list, current.hits.map((hit, i) => hitItem(hit, i)));
        replace(below, current.first.total === 0 && !loading ? noResults() : null);
      } else {
        replace(list);
        replace(below);
      }
    }
    const narrow = !!current && narrowFor === current.key;
    moreBtn.hidden = !current?.next || !state.q.trim() || narrow;
    narrowNote.hidden = !narrow;
    replace(narrowNote, narrow ? t("s.narrow") : "");
    replace(moreBtn, loadingMore ? t("s.loadingMore") : t("s.more"));
    replace(legendBox, current && state.q.trim() ? legend(current.hits) : null);
  }

  function noResults(): HTMLElement {
    const filtered = Object.keys(state.filters).length > 0;
    return h(
      "div",
      { class: "empty card" },
      h("p", {}, h("strong", {}, t(filtered ? "s.noneFiltered" : "s.none", { q: state.q.trim() }))),
      h("p", {}, t("s.tips")),
      h("ul", {}, h("li", {}, t("s.tip1")), h("li", {}, t("s.tip2")), h("li", {}, t("s.tip3"))),
      filtered ? h("button", { type: "button", class: "secondary", onclick: act.clear }, t("s.clearFilters")) : null,
    );
  }

  function startScreen(): HTMLElement {
    return h(
      "div",
      { class: "start" },
      h("p", {}, t("s.start")),
      h(
        "p",
        { class: "examples" },
        h("span", { class: "muted" }, `${t("s.examples")}: `),
        EXAMPLES.map((q) =>
          h(
            "a",
            {
              href: `/search?q=${encodeURIComponent(q)}`,
              class: "example",
              onclick: (e: Event) => {
                e.preventDefault();
                go({ q, filters: state.filters }, true);
                input.focus();
              },
            },
            q,
          ),
        ),
      ),
    );
  }

  // ---- input and keys ----

  input.addEventListener("input", () => {
    state = { ...state, q: input.value };
    history.replaceState(null, "", toUrl(state));
    window.clearTimeout(debounce);
    replace(idNote, meansId(state.q) ? t("s.idEnter") : "");
    debounce = window.setTimeout(() => void run(), DEBOUNCE_MS);
  });

  const hitLinks = () => Array.from(list.querySelectorAll<HTMLAnchorElement>("a.hit"));
  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") {
      const first = hitLinks()[0];
      if (first) {
        e.preventDefault();
        first.focus();
      }
    } else if (e.key === "Escape" && input.value) {
      // The browser clears a type=search box on Esc; search for the empty text too.
      queueMicrotask(() => input.dispatchEvent(new Event("input")));
    }
  });
  list.addEventListener("keydown", (e) => {
    const links = hitLinks();
    const i = links.indexOf(document.activeElement as HTMLAnchorElement);
    if (i < 0) return;
    let to: HTMLElement | undefined;
    if (e.key === "ArrowDown") to = links[i + 1] ?? (moreBtn.hidden ? undefined : moreBtn);
    else if (e.key === "ArrowUp") to = i === 0 ? input : links[i - 1];
    else if (e.key === "Home") to = links[0];
    else if (e.key === "End") to = links[links.length - 1];
    else if (e.key === "Escape") to = input;
    if (to) {
      e.preventDefault();
      to.focus();
      if (to === input) input.select();
    }
  });
  moreBtn.addEventListener("keydown", (e) => {
    if (e.key === "ArrowUp") {
      e.preventDefault();
      hitLinks().at(-1)?.focus();
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
    const el = e.target as HTMLElement;
    if (el.closest("input, textarea, select, [contenteditable]")) return;
    e.preventDefault();
    input.focus();
    input.select();
  });

  window.addEventListener("popstate", () => go(fromUrl(), false));
  onLangChange(() => render());

  render();
  if (state.q.trim()) void run();
  else input.focus();
}

/** A failed search as the reader sees it (its text made at each render, so that it follows
 * the language). Anonymous readers past their daily allowance of
 * listed records (the server's DAILY_LIST_LIMIT) are told so in their language, with what
 * still works; asking again would not help for hours, so there is no retry button. */
function failure(e: unknown, retry: () => void): { text: () => string; retry?: () => void } {
  if (e instanceof RequestError && e.code === "DAILY_LIST_LIMIT") return { text: () => t("s.daily") };
  return { text: () => t("s.failed", { msg: message(e) }), retry };
}

function message(e: unknown): string {
  return e instanceof RequestError ? e.message : e instanceof Error ? e.message : String(e);
}

/** The state an answer was for, from its key (a URL path and query). */
function fromKey(key: string): SearchState {
  return fromUrl(new URL(key, location.origin));
}
