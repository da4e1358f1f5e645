// The queries of the property page and the shapes they return.
import { gql } from "../../shared/gql";
import type { Provenance } from "../common";

export interface Owner {
  id: string;
  name: string;
  fatherName: string | null;
}

export interface RecordFields {
  surveyNo: string;
  khataNo: string | null;
  areaSqM: number;
  areaText: string;
  landType: string;
  marketValue: number;
  verificationStatus: string;
  location: { state: string; district: string; mandal: string; village: string };
  owners: { sharePct: number; owner: Owner }[];
}

export interface Version {
  event: string;
  committedAt: string;
  recordHash: string;
  version: { channel: string; blockNumber: number; txIndex: number; txId: string };
  record: RecordFields;
}

export interface HistoryPage {
  totalCount: number;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  nodes: Version[];
}

export interface Property extends RecordFields {
  id: string;
  state: string;
  year: number;
  shard: number | null;
  sequence: number;
  documents: { docType: string; docHash: string; linkedAt: string; txId: string }[];
  createdAt: string;
  updatedAt: string;
  provenance: Provenance;
  history: HistoryPage;
}

/** The anonymous page limit: larger pages are refused without a token. */
const PAGE = 20;

const RECORD = `surveyNo khataNo areaSqM areaText landType marketValue verificationStatus
  location { state district mandal village }
  owners { sharePct owner { id name fatherName } }`;
const PROVENANCE = `provenance { source channel blockNumber txId recordHash indexedAt replicaLagBlocks stale }`;
const VERSIONS = `totalCount pageInfo { hasNextPage endCursor }
  nodes { event committedAt recordHash version { channel blockNumber txIndex txId } record { ${RECORD} } }`;

export async function loadProperty(id: string, signal?: AbortSignal): Promise<Property | null> {
  const d = await gql<{ property: Property | null }>(
    `query Property($id: ID!, $first: Int) {
      property(id: $id) {
        id state year shard sequence createdAt updatedAt ${RECORD}
        documents { docType docHash linkedAt txId }
        ${PROVENANCE}
        history(first: $first) { ${VERSIONS} }
      }
    }`,
    { id, first: PAGE },
    { signal },
  );
  return d.property;
}

/** The versions after `after`, a page at a time. */
export async function loadHistory(id: string, after: string, signal?: AbortSignal): Promise<HistoryPage> {
  const d = await gql<{ propertyHistory: HistoryPage }>(
    `query History($id: ID!, $first: Int, $after: String) { propertyHistory(id: $id, first: $first, after: $after) { ${VERSIONS} } }`,
    { id, first: PAGE, after },
    { signal },
  );
  return d.propertyHistory;
}

/** Just enough to see whether the record moved on, and how fresh the copy is now. */
export async function loadFreshness(id: string): Promise<{ updatedAt: string; provenance: Provenance } | null> {
  const d = await gql<{ property: { updatedAt: string; provenance: Provenance } | null }>(
    `query Fresh($id: ID!) { property(id: $id) { updatedAt ${PROVENANCE} } }`,
    { id },
  );
  return d.property;
}

export interface OwnerProperties {
  totalCount: number;
  nodes: { id: string; surveyNo: string; location: { village: string; mandal: string; district: string } }[];
}

/** Everything an owner holds: needs a signed-in role (FORBIDDEN otherwise). */
export async function loadOwnerProperties(ownerId: string, token: string | undefined): Promise<OwnerProperties | null> {
  const d = await gql<{ owner: { properties: OwnerProperties } | null }>(
    `query OwnerProperties($id: ID!, $first: Int) { owner(id: $id) { properties(first: $first) { totalCount nodes { id surveyNo location { village mandal district } } } } }`,
    { id: ownerId, first: PAGE },
    { token },
  );
  return d.owner?.properties ?? null;
}

export const CHANGED = `subscription Changed($id: ID!) { propertyChanged(id: $id) { event blockNumber txId seq } }`;
export interface Changed {
  propertyChanged: { event: string; blockNumber: number; txId: string; seq: number };
}
