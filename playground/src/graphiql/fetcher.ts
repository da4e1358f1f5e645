// How GraphiQL talks to landql: queries and mutations as POST /graphql on this origin,
// subscriptions over a WebSocket to the same path (graphql-transport-ws, via graphql-ws).
// The headers editor's JSON goes with each POST and, for subscriptions, as the
// `connection_init` payload, where the server reads `{"Authorization": "Bearer …"}` too.
import { createGraphiQLFetcher, type Fetcher } from "@graphiql/toolkit";

/** ws://host/graphql or wss://host/graphql for the page's own origin. */
export function subscriptionUrl(loc: Location = window.location): string {
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/graphql`;
}

export function landqlFetcher(): Fetcher {
  return createGraphiQLFetcher({
    url: "/graphql",
    subscriptionUrl: subscriptionUrl(),
    // landql answers plain JSON (no @defer/@stream): skip the multipart reader.
    enableIncrementalDelivery: false,
  });
}
