// Monaco's web workers, bundled by Vite as same-origin module workers (`?worker`): the
// editor's own, JSON (variables, headers, response) and GraphQL (validation, completion).
// Nothing is fetched from a CDN, and no blob: or data: worker is made. monaco-editor is pinned
// in package.json to the exact version @graphiql/react pins, so there is one copy of it.
import EditorWorker from "monaco-editor/esm/vs/editor/editor.worker.js?worker";
import JsonWorker from "monaco-editor/esm/vs/language/json/json.worker.js?worker";
import GraphQLWorker from "monaco-graphql/esm/graphql.worker.js?worker";

// Monaco reads `self.MonacoEnvironment` (typed by monaco-editor) when an editor needs a worker.
self.MonacoEnvironment = {
  getWorker(_workerId: string, label: string): Worker {
    if (label === "json") return new JsonWorker();
    if (label === "graphql") return new GraphQLWorker();
    return new EditorWorker();
  },
};
