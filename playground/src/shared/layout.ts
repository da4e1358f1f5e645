// The frame every page shares: a header with the pages and the language picker, a main
// landmark, and the strings they use. A page calls `mountLayout("search")` first.
import { h } from "./dom";
import { LANGS, applyStatic, lang, setLang, strings, type Lang } from "./i18n";
import "./base.css";

strings({
  en: { "nav.home": "landql", "nav.search": "Search", "nav.verify": "Verify", "nav.graphiql": "GraphiQL", "nav.status": "Status", "nav.lang": "Language", "nav.skip": "Skip to content" },
  te: { "nav.search": "వెతకండి", "nav.verify": "ధృవీకరించండి", "nav.status": "స్థితి", "nav.lang": "భాష", "nav.skip": "విషయానికి వెళ్ళండి" },
  kn: { "nav.search": "ಹುಡುಕಿ", "nav.verify": "ಪರಿಶೀಲಿಸಿ", "nav.status": "ಸ್ಥಿತಿ", "nav.lang": "ಭಾಷೆ", "nav.skip": "ವಿಷಯಕ್ಕೆ ಹೋಗಿ" },
  hi: { "nav.search": "खोजें", "nav.verify": "सत्यापित करें", "nav.status": "स्थिति", "nav.lang": "भाषा", "nav.skip": "सामग्री पर जाएँ" },
});

export type PageKey = "home" | "search" | "property" | "verify" | "graphiql" | "status";

/** Put the header before `<main id="main">` and fill static labels. */
export function mountLayout(page: PageKey): HTMLElement {
  document.documentElement.lang = lang();
  const main = document.getElementById("main") ?? document.body.appendChild(h("main", { id: "main" }));
  const link = (href: string, key: string, p: PageKey) =>
    h("a", { href, "data-i18n": key, "aria-current": p === page ? "page" : null });
  const select = h(
    "select",
    { id: "lang", "data-i18n-aria": "nav.lang", onchange: (e: Event) => setLang((e.target as HTMLSelectElement).value as Lang) },
    LANGS.map((l) => h("option", { value: l.code, lang: l.code, selected: l.code === lang() }, l.label)),
  );
  const header = h(
    "header",
    { class: "site" },
    h("a", { class: "skip", href: "#main", "data-i18n": "nav.skip" }),
    h(
      "nav",
      { "aria-label": "landql" },
      link("/", "nav.home", "home"),
      link("/search", "nav.search", "search"),
      link("/verify", "nav.verify", "verify"),
      link("/graphiql", "nav.graphiql", "graphiql"),
      link("/status", "nav.status", "status"),
    ),
    select,
  );
  document.body.insertBefore(header, main);
  applyStatic();
  return main;
}
