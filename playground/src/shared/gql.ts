// One GraphQL request to this origin's `/graphql`, with errors a page can show as they are.

/** Why a request failed, worded for the page that shows it. */
export class RequestError extends Error {
  constructor(
    message: string,
    /** `network`, `http` (status in `status`), or a GraphQL `extensions.code`. */
    readonly code: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface GqlOptions {
  /** A bearer token (without "Bearer "). */
  token?: string;
  signal?: AbortSignal;
}

interface GqlError {
  message: string;
  extensions?: { code?: string };
  path?: (string | number)[];
}

/**
 * POST a query; resolves to `data` when the response carries no errors, else rejects with
 * the first error's message and code. `partial` callers (who can show data beside field
 * errors) use {@link gqlRaw}.
 */
export async function gql<T>(
  query: string,
  variables: Record<string, unknown> = {},
  opts: GqlOptions = {},
): Promise<T> {
  const { data, errors } = await gqlRaw<T>(query, variables, opts);
  if (errors?.length) {
    const e = errors[0];
    throw new RequestError(e.message, e.extensions?.code ?? "GRAPHQL_ERROR");
  }
  if (data == null) throw new RequestError("The server answered without data.", "http");
  return data;
}

/** POST a query and hand back data and errors as they came. */
export async function gqlRaw<T>(
  query: string,
  variables: Record<string, unknown> = {},
  opts: GqlOptions = {},
): Promise<{ data?: T | null; errors?: GqlError[] }> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/graphql-response+json, application/json",
  };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let res: Response;
  try {
    res = await fetch("/graphql", {
      method: "POST",
      headers,
      body: JSON.stringify({ query, variables }),
      signal: opts.signal,
    });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new RequestError("The server could not be reached.", "network");
  }
  let body: { data?: T | null; errors?: GqlError[] };
  try {
    body = await res.json();
  } catch {
    throw new RequestError(`The server answered HTTP ${res.status} without a GraphQL body.`, "http", res.status);
  }
  if (!res.ok && !body.errors?.length) {
    throw new RequestError(`The server answered HTTP ${res.status}.`, "http", res.status);
  }
  return body;
}
