// One GraphQL subscription over this origin's `/graphql` WebSocket, speaking just enough of
// graphql-transport-ws (connection_init → connection_ack → subscribe → next… ; ping/pong)
// to follow a property or the replica's progress. Hand-written: the protocol is five message
// types, and a client library would cost more than the whole search page.

export interface LiveHandlers<T> {
  /** Each `next` payload's data. */
  next: (data: T) => void;
  /**
   * The subscription ended without being asked to (socket refused or closed, server error):
   * callers fall back to polling. Called at most once.
   */
  failed: (why: string) => void;
}

/**
 * Start `query` with `variables`; returns a function that stops it. `token`, if given, is
 * sent in `connection_init` (browsers cannot set headers on a WebSocket).
 */
export function subscribe<T>(
  query: string,
  variables: Record<string, unknown>,
  on: LiveHandlers<T>,
  token?: string,
): () => void {
  let done = false;
  const fail = (why: string) => {
    if (done) return;
    done = true;
    on.failed(why);
  };
  let ws: WebSocket;
  try {
    ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`, "graphql-transport-ws");
  } catch (e) {
    // Constructing can throw (e.g. a page served from file:); treat it as a failed socket.
    queueMicrotask(() => fail(String(e)));
    return () => {
      done = true;
    };
  }
  const send = (m: object) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(m));
  ws.onopen = () => send({ type: "connection_init", payload: token ? { Authorization: `Bearer ${token}` } : {} });
  ws.onmessage = (ev) => {
    let m: { type?: string; payload?: unknown };
    try {
      m = JSON.parse(String(ev.data));
    } catch {
      return;
    }
    switch (m.type) {
      case "connection_ack":
        send({ id: "1", type: "subscribe", payload: { query, variables } });
        break;
      case "ping":
        send({ type: "pong" });
        break;
      case "next": {
        const p = m.payload as { data?: T; errors?: { message: string }[] };
        if (p?.errors?.length) fail(p.errors[0].message);
        else if (p?.data && !done) on.next(p.data);
        break;
      }
      case "error": {
        const errs = m.payload as { message: string }[] | undefined;
        fail(errs?.[0]?.message ?? "subscription refused");
        ws.close(1000);
        break;
      }
      case "complete":
        fail("subscription completed");
        ws.close(1000);
        break;
    }
  };
  ws.onclose = (ev) => fail(`socket closed (${ev.code})`);
  return () => {
    done = true;
    // Closing a socket that is still connecting makes Chromium log an error; let it open
    // and close it then.
    if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000);
    else ws.close(1000);
  };
}
