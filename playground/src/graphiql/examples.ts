// The example operations of the GraphiQL page: those of the old `/` page (api/src/playground.rs)
// and a few more, filled with a property that exists (asked for once at load) so each one
// answers with data when run as it is.
import { gqlRaw } from "../shared/gql";

/** A property that exists, and what the examples need of it. */
export interface Fixture {
  id: string;
  state: string;
  district: string;
  village: string;
  surveyNo: string;
  /** The first word of its first owner's name as the owner register has it, for `owners(name:)`. */
  ownerName: string;
}

/** Used when the replica holds no property yet (or cannot be reached). */
export const PLACEHOLDER: Fixture = {
  id: "LRI-IND-TS-2026-03-00567",
  state: "TS",
  district: "Hyderabad",
  village: "Balapur",
  surveyNo: "123-A",
  ownerName: "Venkatesh",
};

export interface Example {
  title: string;
  query: string;
  variables: Record<string, unknown>;
}

interface FixtureData {
  properties: {
    edges: {
      node: {
        id: string;
        surveyNo: string;
        location: { state: string; district: string; village: string };
        owners: { owner: { id: string } }[];
      };
    }[];
  };
}

/** The first property of the replica, else {@link PLACEHOLDER}. Never rejects. */
export async function liveFixture(signal?: AbortSignal): Promise<Fixture> {
  try {
    const { data } = await gqlRaw<FixtureData>(
      "{ properties(first: 1) { edges { node { id surveyNo location { state district village } owners { owner { id } } } } } }",
      {},
      { signal },
    );
    const node = data?.properties.edges[0]?.node;
    if (!node) return PLACEHOLDER;
    return {
      id: node.id,
      state: node.location.state,
      district: node.location.district,
      village: node.location.village,
      surveyNo: node.surveyNo,
      ownerName: await ownerPrefix(node.owners[0]?.owner.id, signal),
    };
  } catch {
    return PLACEHOLDER;
  }
}

/**
 * The first word of an owner's registered name. A record may spell its owners' names its own
 * way; `owners(name:)` matches the register's spelling, so ask for it.
 */
async function ownerPrefix(id: string | undefined, signal?: AbortSignal): Promise<string> {
  if (!id) return PLACEHOLDER.ownerName;
  const { data } = await gqlRaw<{ owner: { name: string } | null }>(
    "query Owner($id: ID!) { owner(id: $id) { name } }",
    { id },
    { signal },
  );
  return data?.owner?.name.split(/\s+/)[0] || PLACEHOLDER.ownerName;
}

const SEARCH = `query Search($text: String!) {
  search(text: $text, first: 5) {
    total
    hits {
      score
      property { id location { district village } owners { owner { name } } }
      highlights { field text ranges }
    }
    facets { field values { value count } }
    pageInfo { hasNextPage endCursor }
  }
}`;

/** Every example, in the order the picker lists them; the first is the default tab. */
export function examples(f: Fixture): Example[] {
  return [
    {
      title: "A property by ID, with provenance",
      query: `# Ctrl-Enter (⌘-Enter) runs this. More
# examples in the left pane; schema: Docs.
# Signed in: under Headers put
# {"Authorization": "Bearer <token>"}
query PropertyById($id: ID!) {
  property(id: $id) {
    id state year surveyNo khataNo areaSqM areaText landType marketValue
    verificationStatus createdAt updatedAt
    location { state district mandal village }
    owners { sharePct owner { id name fatherName } }
    documents { docType docHash linkedAt txId }
    provenance { source channel blockNumber txId recordHash indexedAt replicaLagBlocks stale }
  }
}`,
      variables: { id: f.id },
    },
    {
      title: "Properties of a district, a page at a time",
      query: `query DistrictPage($state: String!, $district: String!, $after: String) {
  properties(filter: { state: $state, district: $district },
             orderBy: MARKET_VALUE_DESC, first: 10, after: $after) {
    totalCount
    edges {
      cursor
      node {
        id surveyNo marketValue
        location { mandal village }
        owners { sharePct owner { name } }
        documents { docType }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}`,
      variables: { state: f.state, district: f.district },
    },
    { title: "Citizen search: a name in Latin letters", query: SEARCH, variables: { text: "Venkatesh" } },
    { title: "Citizen search: the same name in Telugu script", query: SEARCH, variables: { text: "వెంకటేష్" } },
    {
      title: "Search by survey number within a village",
      query: SEARCH,
      variables: { text: `${f.surveyNo} ${f.village}` },
    },
    {
      title: "Property counts by location (districts of a state)",
      query: `query Locations($state: String) {
  locations(state: $state) { name level properties }
}`,
      variables: { state: f.state },
    },
    {
      title: "Every version of a property (history)",
      query: `query History($id: ID!) {
  propertyHistory(id: $id, first: 10) {
    totalCount
    edges {
      node {
        event committedAt recordHash
        version { channel blockNumber txIndex txId }
        record { verificationStatus owners { sharePct owner { name } } }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}`,
      variables: { id: f.id },
    },
    {
      title: "Verify a property against the ledger, with its proof",
      query: `query Verify($id: ID!) {
  verifyProperty(id: $id) {
    propertyId outcome replicaRecordHash ledgerRecordHash chainHeight checkedAt
    ledgerVersion { channel blockNumber txIndex txId }
    proof { blockNumber headerHash auditPath json }
  }
}`,
      variables: { id: f.id },
    },
    {
      title: "Owners by name (needs a token: citizen or above)",
      query: `query Owners($name: String!) {
  owners(name: $name, first: 5) {
    totalCount
    edges {
      node {
        id name fatherName
        properties(first: 5) { totalCount edges { node { id location { district village } } } }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}`,
      variables: { name: f.ownerName },
    },
    {
      title: "Everything its owners hold (needs a token: citizen or above)",
      query: `query Holdings($id: ID!) {
  property(id: $id) {
    id
    owners {
      owner {
        id name
        properties(first: 20) { totalCount edges { node { id location { village } } } }
      }
    }
  }
}`,
      variables: { id: f.id },
    },
    {
      title: "Sync errors (needs a registrar or admin token)",
      query: `{
  _meta {
    hasIndexingErrors
    syncErrors(first: 10) {
      edges { node { id channel blockNumber txIndex txId error createdAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
}`,
      variables: {},
    },
    {
      title: "How fresh is the replica (_meta)",
      query: `{
  _meta {
    changeLogSeq searchIndexSeq hasIndexingErrors
    channels { channel indexedBlock chainHeight lagBlocks lagSeconds indexedAt }
  }
}`,
      variables: {},
    },
    {
      title: "Subscription: the replica's progress (WebSocket)",
      query: `subscription Progress {
  progress {
    changeLogSeq searchIndexSeq
    channels { channel indexedBlock chainHeight lagBlocks }
  }
}`,
      variables: {},
    },
    {
      title: "Subscription: changes to one property (WebSocket)",
      query: `subscription Watch($id: ID!) {
  propertyChanged(id: $id) {
    event blockNumber txId
    property { id verificationStatus owners { owner { name } } }
  }
}`,
      variables: { id: f.id },
    },
  ];
}

/** The variables editor's text for an example. */
export function variablesText(e: Example): string {
  return Object.keys(e.variables).length ? JSON.stringify(e.variables, null, 2) : "";
}
