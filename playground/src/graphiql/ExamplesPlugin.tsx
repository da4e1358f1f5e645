// A GraphiQL plugin (a pane opened from the sidebar) listing the example operations. Picking
// one opens it in a new tab with its variables, keeping the current headers (so a token
// pasted once stays), or fills the current tab when that one is still empty.
import { useGraphiQL, useGraphiQLActions, type GraphiQLPlugin } from "@graphiql/react";
import type { Example } from "./examples";
import { variablesText } from "./examples";

export const EXAMPLES_TITLE = "Examples";

/** Narrower than this, the pane closes once an example is picked, to show the editor. */
const NARROW = "(max-width: 720px)";

function ExamplesIcon() {
  return (
    <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="1.5" aria-hidden="true">
      <rect x="4" y="3" width="16" height="18" rx="2" />
      <path d="M8 8h8M8 12h8M8 16h5" strokeLinecap="round" />
    </svg>
  );
}

/**
 * Close the pane as its sidebar button does: GraphiQL's `setVisiblePlugin(null)` alone empties
 * the pane but leaves its space taken (the sidebar also resets the pane's size state).
 */
function closePane(): void {
  document.querySelector<HTMLButtonElement>(".graphiql-sidebar button.active")?.click();
}

function ExamplesPane({ examples }: { examples: Example[] }) {
  const { queryEditor, variableEditor, headerEditor } = useGraphiQL((s) => ({
    queryEditor: s.queryEditor,
    variableEditor: s.variableEditor,
    headerEditor: s.headerEditor,
  }));
  const { addTab } = useGraphiQLActions();

  const open = (e: Example) => {
    if (!queryEditor) return;
    const headers = headerEditor?.getValue() ?? "";
    if (queryEditor.getValue().trim() !== "") addTab();
    queryEditor.setValue(e.query);
    variableEditor?.setValue(variablesText(e));
    headerEditor?.setValue(headers);
    if (window.matchMedia(NARROW).matches) closePane();
    queryEditor.focus();
  };

  return (
    <section className="landql-examples" aria-labelledby="landql-examples-title">
      <h2 className="graphiql-doc-explorer-title" id="landql-examples-title">
        {EXAMPLES_TITLE}
      </h2>
      <p className="landql-examples-hint">
        Each opens in a new tab, filled with a property that exists. Operations marked “needs a
        token” want <code>{'{"Authorization": "Bearer …"}'}</code> under Headers; <code>landql dev</code>{" "}
        prints a citizen and a registrar token.
      </p>
      <ul>
        {examples.map((e) => (
          <li key={e.title}>
            <button type="button" className="graphiql-un-styled landql-example" onClick={() => open(e)}>
              {e.title}
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** The plugin object; pass it in `plugins` (it must stay the same object across renders). */
export function examplesPlugin(examples: Example[]): GraphiQLPlugin {
  return {
    title: EXAMPLES_TITLE,
    icon: ExamplesIcon,
    content: () => <ExamplesPane examples={examples} />,
  };
}
