// Facets (place drill-down state → district → mandal → village, land type, verification
// status) as toggle buttons with counts, and the active filters as removable chips.
// A facet `value` is the index's normalised key ("rangaredi" for every spelling of
// Rangareddy); it goes back to the server as the filter, and its `label` is what people read.
import { h } from "../../shared/dom";
import { t } from "../../shared/i18n";
import { landTypeLabel, stateName, statusLabel } from "../common";
import { indianNumber } from "../format";
import type { Facet, Hit } from "./api";
import { FILTER_KEYS, placeFacetLevel, type FilterKey, type PlaceLevel, type SearchState } from "./state";

/** Display labels of filter keys seen in facets and hits this session (`district:rangaredi`). */
const labels = new Map<string, string>();

/** Remember the labels of facet values and of the places in hits, for the chips. */
export function learnLabels(s: SearchState, facets: Facet[] | undefined, hits: Hit[]): void {
  const level = placeFacetLevel(s.filters);
  for (const f of facets ?? []) {
    const key = f.field === "place" ? level : f.field === "verificationStatus" ? "status" : f.field;
    for (const v of f.values) labels.set(`${key}:${v.value}`, v.label);
  }
  // Every hit lies within the place filters, so its location spells the filtered places.
  const first = hits[0]?.property.location;
  if (first) {
    for (const l of ["district", "mandal", "village"] as const) {
      const k = s.filters[l];
      if (k && !labels.has(`${l}:${k}`)) labels.set(`${l}:${k}`, first[l]);
    }
  }
}

/** How a filter value reads on a chip or button. */
export function filterLabel(key: FilterKey, value: string): string {
  if (key === "state") return stateName(value);
  if (key === "status") return statusLabel(value);
  const l = labels.get(`${key}:${value}`) ?? value;
  return key === "landType" ? landTypeLabel(l) : l;
}

export interface FacetActions {
  choosePlace(level: PlaceLevel, value: string): void;
  toggle(key: "landType" | "status", value: string): void;
  remove(key: FilterKey): void;
  clear(): void;
}

/** The facet groups for one answer. */
export function facetPanel(s: SearchState, facets: Facet[], act: FacetActions): HTMLElement[] {
  const level = placeFacetLevel(s.filters);
  const out: HTMLElement[] = [];
  for (const f of facets) {
    const key: FilterKey = f.field === "place" ? level : f.field === "verificationStatus" ? "status" : (f.field as FilterKey);
    if (!FILTER_KEYS.includes(key)) continue;
    const current = s.filters[key];
    const heading = t(`f.${key}`);
    const id = `facet-${key}`;
    const buttons = f.values.map((v) => {
      const shown =
        key === "state" ? stateName(v.value) : key === "status" ? statusLabel(v.value) : key === "landType" ? landTypeLabel(v.label) : v.label;
      const on = current === v.value;
      return h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: "facet-v",
            "aria-pressed": on ? "true" : "false",
            "data-facet": key,
            "data-value": v.value,
            onclick: () => {
              if (key === "landType" || key === "status") act.toggle(key, v.value);
              else if (on) act.remove(key);
              else act.choosePlace(key, v.value);
            },
          },
          h("span", { class: "facet-label" }, shown),
          // The count is read with its unit ("82 records"), the unit visible only to screen readers.
          h("span", { class: "count" }, indianNumber(v.count), h("span", { class: "visually-hidden" }, ` ${t("f.records")}`)),
        ),
      );
    });
    out.push(
      h(
        "section",
        { class: "facet", "aria-labelledby": id },
        h("h2", { id, class: "facet-h" }, heading),
        buttons.length ? h("ul", { class: "facet-list" }, buttons) : h("p", { class: "muted small" }, t("f.none")),
      ),
    );
  }
  return out;
}

/** Active filters, each a button that removes it. */
export function chips(s: SearchState, act: FacetActions): HTMLElement | null {
  const active = FILTER_KEYS.filter((k) => s.filters[k]);
  if (active.length === 0) return null;
  return h(
    "div",
    { class: "chips", role: "group", "aria-label": t("s.active") },
    active.map((k) => {
      const label = filterLabel(k, s.filters[k]!);
      return h(
        "button",
        { type: "button", class: "chip", "data-chip": k, onclick: () => act.remove(k) },
        h("span", { class: "visually-hidden" }, `${t("s.remove")}: `),
        h("span", { class: "chip-k" }, `${t(`f.${k}`)}: `),
        label,
        h("span", { class: "x", "aria-hidden": "true" }, "×"),
      );
    }),
    active.length > 1
      ? h("button", { type: "button", class: "chip clear", onclick: () => act.clear() }, t("s.clearFilters"))
      : null,
  );
}
