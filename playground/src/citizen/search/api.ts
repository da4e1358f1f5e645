// The one query the search page sends, and the shapes it gets back.
import { gql } from "../../shared/gql";
import type { SearchState } from "./state";
import { gqlFilter } from "./state";

export interface Highlight {
  /**
   * `owners[0].name`, `owners[1].fatherName`, `district`, `mandal`, `village`, `surveyNo`, `khataNo`, `id`,
   * or `formerNames[0]`: an owner name an earlier version of the record carried (its text is that name).
   */
  field: string;
  text: string;
  /** [start, end) in Unicode scalar values. */
  ranges: number[][];
  matchKind: string;
}

export interface Hit {
  property: {
    id: string;
    state: string;
    surveyNo: string;
    khataNo: string | null;
    landType: string;
    verificationStatus: string;
    location: { state: string; district: string; mandal: string; village: string };
    owners: { sharePct: number; owner: { name: string; fatherName: string | null } }[];
  };
  /** Found by a name the record no longer carries (ranked below current names). */
  formerName: boolean;
  highlights: Highlight[];
}

export interface FacetValue {
  value: string;
  label: string;
  count: number;
}
export interface Facet {
  field: string;
  values: FacetValue[];
}

export interface SearchPage {
  total: number;
  hits: Hit[];
  facets?: Facet[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** The anonymous page limit (`--max-page-anonymous`, default 20). */
export const PAGE = 20;

const QUERY = `query Search($text: String!, $filter: PropertyFilter, $first: Int, $after: String, $facets: Boolean!) {
  search(text: $text, filter: $filter, first: $first, after: $after) {
    total
    hits {
      property {
        id state surveyNo khataNo landType verificationStatus
        location { state district mandal village }
        owners { sharePct owner { name fatherName } }
      }
      formerName
      highlights { field text ranges matchKind }
    }
    facets @include(if: $facets) { field values { value label count } }
    pageInfo { hasNextPage endCursor }
  }
}`;

/** One page of results; facets only with the first page (later pages share them). */
export async function search(s: SearchState, after: string | null, signal: AbortSignal): Promise<SearchPage> {
  const d = await gql<{ search: SearchPage }>(
    QUERY,
    { text: s.q.trim(), filter: gqlFilter(s.filters), first: PAGE, after, facets: after == null },
    { signal },
  );
  return d.search;
}
