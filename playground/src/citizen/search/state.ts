// The search page's state — the text and the filters — and its URL form
// (`/search?q=…&state=TS&district=…&mandal=…&village=…&landType=…&status=…`), so that a
// search can be shared, bookmarked, and walked back and forth with the browser's buttons.
// Filter values are the index's normalised keys (facet `value`s), not display labels.

export const PLACE_LEVELS = ["state", "district", "mandal", "village"] as const;
export type PlaceLevel = (typeof PLACE_LEVELS)[number];
export const FILTER_KEYS = [...PLACE_LEVELS, "landType", "status"] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];

const STATUSES = ["pending", "verified", "disputed", "rejected"];

export interface SearchState {
  q: string;
  filters: Partial<Record<FilterKey, string>>;
}

export function fromUrl(loc: { search: string } = location): SearchState {
  const p = new URLSearchParams(loc.search);
  const filters: SearchState["filters"] = {};
  for (const k of FILTER_KEYS) {
    const v = p.get(k)?.trim();
    if (v) filters[k] = v;
  }
  // The status is an enum on the server: a hand-edited URL with another word would fail
  // the whole request, so it is dropped here instead.
  if (filters.status && !STATUSES.includes(filters.status.toLowerCase())) delete filters.status;
  return { q: p.get("q") ?? "", filters };
}

export function toUrl(s: SearchState): string {
  const p = new URLSearchParams();
  if (s.q.trim()) p.set("q", s.q);
  for (const k of FILTER_KEYS) {
    const v = s.filters[k];
    if (v) p.set(k, v);
  }
  const qs = p.toString();
  return `${location.pathname}${qs ? `?${qs}` : ""}`;
}

/**
 * The place level the server counts for these filters (search-index/src/search/facets.rs):
 * the level below the deepest of state → district → mandal filtered on; with a mandal, its
 * villages (also when a village is chosen, so that a sibling can be picked instead).
 * Deeper levels count only below a state, so a district is always chosen within one.
 */
export function placeFacetLevel(f: SearchState["filters"]): PlaceLevel {
  if (!f.state) return "state";
  if (!f.district) return "district";
  if (!f.mandal) return "mandal";
  return "village";
}

/** Choose a place at `level`, dropping the levels below it (they belonged to the old one). */
export function withPlace(s: SearchState, level: PlaceLevel, value: string): SearchState {
  const filters = { ...s.filters };
  const i = PLACE_LEVELS.indexOf(level);
  filters[level] = value;
  for (const l of PLACE_LEVELS.slice(i + 1)) delete filters[l];
  return { ...s, filters };
}

/** Remove one filter; removing a place removes the places within it too. */
export function without(s: SearchState, key: FilterKey): SearchState {
  const filters = { ...s.filters };
  delete filters[key];
  const i = PLACE_LEVELS.indexOf(key as PlaceLevel);
  if (i >= 0) for (const l of PLACE_LEVELS.slice(i + 1)) delete filters[l];
  return { ...s, filters };
}

/** The GraphQL `PropertyFilter` for these filters (status facet keys are lower-case). */
export function gqlFilter(f: SearchState["filters"]): Record<string, string> | null {
  const out: Record<string, string> = {};
  for (const l of PLACE_LEVELS) if (f[l]) out[l] = f[l]!;
  if (f.landType) out.landType = f.landType;
  if (f.status) out.verificationStatus = f.status.toUpperCase();
  return Object.keys(out).length ? out : null;
}

export function sameState(a: SearchState, b: SearchState): boolean {
  return toUrl(a) === toUrl(b);
}
