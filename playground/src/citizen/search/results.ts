// One search result as a card linking to its property page: owners (with the matched words
// marked), father's name, survey number, village → district, ID and status. How a word
// matched is shown by the mark's style (solid = exact, dotted = spelling variant, wavy = a
// typo allowed…) and said in words for screen readers and on hover.
import { h } from "../../shared/dom";
import { t } from "../../shared/i18n";
import { landTypeLabel, stateName, statusBadge, tNodes } from "../common";
import { splitRanges } from "../format";
import { propertyHref } from "../ids";
import type { Highlight, Hit } from "./api";
import "./search.css";

/** Match kinds the server reports; an unknown one is shown like `fuzzy` (the weakest). */
export const KINDS = ["exact", "identifier", "fold", "phonetic", "prefix", "join", "fuzzy"] as const;
/** Kinds a reader can take at face value: no note needed beside the mark. */
const PLAIN = new Set(["exact", "identifier"]);

function kindOf(k: string): string {
  return (KINDS as readonly string[]).includes(k) ? k : "fuzzy";
}

/**
 * `text` with the highlight's ranges marked, if the highlight is for this very text (the
 * server quotes the field as stored; a mismatch means the record changed since indexing,
 * and then marks would land on the wrong letters).
 */
export function marked(text: string, hl: Highlight | undefined): (Node | string)[] {
  if (!hl || hl.text !== text || hl.ranges.length === 0) return [text];
  const kind = kindOf(hl.matchKind);
  const note = t(`m.${kind}`);
  return splitRanges(text, hl.ranges).map((p) =>
    p.hit
      ? h(
          "mark",
          { class: `m-${kind}`, title: note },
          p.text,
          PLAIN.has(kind) ? null : h("span", { class: "visually-hidden" }, ` (${note})`),
        )
      : p.text,
  );
}

/** The list item for one hit; `index` makes its id (`hit-3`) for keyboard movement. */
export function hitItem(hit: Hit, index: number): HTMLLIElement {
  const p = hit.property;
  const hl = new Map(hit.highlights.map((x) => [x.field, x]));
  const shown = p.owners.slice(0, 3);
  const fathers = shown
    .map((o, i) => ({ name: o.owner.fatherName, hl: hl.get(`owners[${i}].fatherName`) }))
    .filter((f): f is { name: string; hl: Highlight | undefined } => !!f.name);
  const loc = p.location;
  const place = [
    ["village", loc.village],
    ["mandal", loc.mandal],
    ["district", loc.district],
  ] as const;
  const idHit = hl.get("id");
  // Names the record no longer carries that the query met (a misspelling since corrected,
  // a former owner): said in words, so that nobody takes the old name for the current one.
  const former = hit.formerName ? hit.highlights.filter((x) => x.field.startsWith("formerNames[")) : [];
  return h(
    "li",
    {},
    h(
      "a",
      { class: `hit${idHit ? " id-hit" : ""}`, href: propertyHref(p.id), id: `hit-${index}`, "data-id": p.id },
      h(
        "span",
        { class: "hit-owners" },
        shown.flatMap((o, i) => [
          i > 0 ? h("span", { class: "sep", "aria-hidden": "true" }, " · ") : null,
          h("span", { class: "owner", lang: scriptLang(o.owner.name) }, marked(o.owner.name, hl.get(`owners[${i}].name`))),
          p.owners.length > 1 ? h("span", { class: "share" }, ` ${o.sharePct}%`) : null,
        ]),
        p.owners.length > shown.length ? h("span", { class: "muted" }, ` ${t("s.moreOwners", { n: p.owners.length - shown.length })}`) : null,
      ),
      former.length
        ? h(
            "span",
            { class: "hit-former muted" },
            former.flatMap((f, i) => [
              i > 0 ? " · " : null,
              h("span", {}, tNodes("s.former", { name: h("span", { lang: scriptLang(f.text) }, marked(f.text, f)) })),
            ]),
          )
        : null,
      fathers.length
        ? h(
            "span",
            { class: "hit-father muted" },
            fathers.flatMap((f, i) => [
              i > 0 ? " · " : null,
              h("span", {}, tNodes("so", { name: h("span", { lang: scriptLang(f.name) }, marked(f.name, f.hl)) })),
            ]),
          )
        : null,
      h(
        "span",
        { class: "hit-place" },
        h("span", { class: "survey" }, tNodes("survey", { n: marked(p.surveyNo, hl.get("surveyNo")) })),
        p.khataNo && hl.get("khataNo") ? h("span", {}, " · ", marked(p.khataNo, hl.get("khataNo"))) : null,
        h("span", { class: "sep", "aria-hidden": "true" }, " · "),
        place.flatMap(([f, v], i) => [i > 0 ? ", " : null, h("span", { lang: scriptLang(v) }, marked(v, hl.get(f)))]),
        `, ${stateName(p.state)}`,
      ),
      h(
        "span",
        { class: "hit-foot" },
        h("code", { class: "pid" }, marked(p.id, idHit)),
        statusBadge(p.verificationStatus),
        h("span", { class: "muted" }, landTypeLabel(p.landType)),
      ),
    ),
  );
}

/**
 * The script of a name, so the browser picks the right font and screen readers the right
 * voice: Telugu, Kannada, Devanagari, else none (the page's language applies).
 */
function scriptLang(s: string): string | null {
  if (/[\u0C00-\u0C7F]/.test(s)) return "te";
  if (/[\u0C80-\u0CFF]/.test(s)) return "kn";
  if (/[\u0900-\u097F]/.test(s)) return "hi";
  return null;
}

/** The key to the mark styles, for the kinds present in these hits. */
export function legend(hits: Hit[]): HTMLElement | null {
  const seen = new Set(hits.flatMap((x) => x.highlights.map((hl) => kindOf(hl.matchKind))));
  const kinds = KINDS.filter((k) => seen.has(k));
  if (kinds.length === 0) return null;
  return h(
    "p",
    { class: "legend small muted" },
    t("m.legend"),
    " ",
    kinds.map((k) => h("span", { class: "legend-item" }, h("mark", { class: `m-${k}` }, "abc"), " ", t(`m.${k}`))),
  );
}
