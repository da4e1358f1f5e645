// The pages' own labels in English, Telugu, Kannada and Hindi. Each page registers its
// strings with `strings({ en: {...}, te: {...}, kn: {...}, hi: {...} })`; a key missing in a
// language falls back to English. The choice is kept in localStorage and applies to every page.

export const LANGS = [
  { code: "en", label: "English" },
  { code: "te", label: "తెలుగు" },
  { code: "kn", label: "ಕನ್ನಡ" },
  { code: "hi", label: "हिन्दी" },
] as const;

export type Lang = (typeof LANGS)[number]["code"];
type Dict = Record<string, string>;

const KEY = "landql.lang";
const dicts: Record<Lang, Dict> = { en: {}, te: {}, kn: {}, hi: {} };
const listeners: (() => void)[] = [];

function isLang(s: string | null): s is Lang {
  return LANGS.some((l) => l.code === s);
}

function readStored(): Lang {
  try {
    const s = localStorage.getItem(KEY);
    if (isLang(s)) return s;
  } catch {
    // storage refused (private mode): English
  }
  return "en";
}

let current: Lang = readStored();

/** Add a page's strings. English is required for every key. */
export function strings(d: { en: Dict } & Partial<Record<Lang, Dict>>): void {
  for (const l of LANGS) Object.assign(dicts[l.code], d[l.code] ?? {});
}

/** The label `key` in the current language; `{name}` placeholders filled from `vars`. */
export function t(key: string, vars: Record<string, string | number> = {}): string {
  const s = dicts[current][key] ?? dicts.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
}

export function lang(): Lang {
  return current;
}

export function setLang(l: Lang): void {
  current = l;
  try {
    localStorage.setItem(KEY, l);
  } catch {
    // not kept; still applies to this page
  }
  document.documentElement.lang = l;
  applyStatic();
  for (const f of listeners) f();
}

/** Re-render hook for text a page builds itself. */
export function onLangChange(f: () => void): void {
  listeners.push(f);
}

/** Fill every `[data-i18n]` element's text (and `[data-i18n-placeholder]`, `[data-i18n-aria]`). */
export function applyStatic(root: ParentNode = document): void {
  for (const el of root.querySelectorAll<HTMLElement>("[data-i18n]")) el.textContent = t(el.dataset.i18n!);
  for (const el of root.querySelectorAll<HTMLInputElement>("[data-i18n-placeholder]"))
    el.placeholder = t(el.dataset.i18nPlaceholder!);
  for (const el of root.querySelectorAll<HTMLElement>("[data-i18n-aria]"))
    el.setAttribute("aria-label", t(el.dataset.i18nAria!));
}
