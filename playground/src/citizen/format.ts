// Numbers, money, dates and Unicode-aware text slicing for the citizen pages. Written out by
// hand where the browser's Intl output could differ between machines (rupee grouping), so
// the pages and their tests see exactly the same text everywhere.
import { lang } from "../shared/i18n";

/**
 * Indian digit grouping: the last three digits, then pairs — 4500000 → "45,00,000".
 * Negative numbers keep their sign.
 */
export function indianNumber(n: number): string {
  const neg = n < 0;
  const s = String(Math.trunc(Math.abs(n)));
  const last3 = s.slice(-3);
  let rest = s.slice(0, -3);
  const parts: string[] = [];
  while (rest.length > 2) {
    parts.unshift(rest.slice(-2));
    rest = rest.slice(0, -2);
  }
  if (rest) parts.unshift(rest);
  parts.push(last3);
  return (neg ? "-" : "") + parts.join(",");
}

/** Whole rupees as written in India: 4500000 → "₹45,00,000". */
export function rupees(n: number): string {
  return `₹${indianNumber(n)}`;
}

/** The BCP 47 locale for the page language, Indian conventions throughout. */
export function locale(): string {
  return `${lang()}-IN`;
}

/** A date-time in the page language (Intl falls back to English where it lacks one). */
export function dateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(d);
}

/** A calendar date only. */
export function date(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium" }).format(d);
}

/**
 * Cut `text` at character offsets given in Unicode scalar values (as the API's highlight
 * ranges are), not UTF-16 units: `Array.from` splits a string into scalar values, so a
 * range [3, 8) lands on the same letters in Telugu, Devanagari or emoji-bearing text as on
 * the server. Returns alternating pieces: `[plain, matched, plain, matched, …, plain]`,
 * with each matched piece paired with the index of its range. Overlapping or out-of-order
 * ranges are sorted and merged; ranges beyond the text are clipped.
 */
export function splitRanges(text: string, ranges: readonly (readonly number[])[]): { text: string; hit: boolean }[] {
  const chars = Array.from(text);
  const sorted = ranges
    .filter((r) => r.length >= 2)
    .map(([a, b]) => [Math.max(0, Math.min(a, chars.length)), Math.max(0, Math.min(b, chars.length))] as const)
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = merged[merged.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  const out: { text: string; hit: boolean }[] = [];
  let at = 0;
  for (const [a, b] of merged) {
    if (a > at) out.push({ text: chars.slice(at, a).join(""), hit: false });
    out.push({ text: chars.slice(a, b).join(""), hit: true });
    at = b;
  }
  if (at < chars.length) out.push({ text: chars.slice(at).join(""), hit: false });
  return out;
}

/** "sale_deed" → "Sale deed": a readable fallback for a key we have no translation for. */
export function humanize(key: string): string {
  const s = key.replace(/[_-]+/g, " ").trim();
  return s.charAt(0).toUpperCase() + s.slice(1);
}
