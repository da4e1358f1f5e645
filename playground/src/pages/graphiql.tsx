// /graphiql: GraphiQL 5 over this origin's /graphql, with the example operations of the old
// `/` page as a sidebar pane (and the first of them as the default tab), filled with a
// property that exists. Everything it loads comes from this origin: Monaco's workers are
// bundled (see ../graphiql/workers.ts), its fonts are in the CSS or beside it.
import "../graphiql/workers";
// GraphiQL's styles without `graphiql/style.css`, which repeats Monaco's CSS (its ESM modules
// bring their own) and inlines Roboto and Fira Code as data: URLs. The UI uses the site's
// system fonts instead (they also cover Telugu, Kannada and Hindi); the editors ask for Fira
// Code by name, so it comes as font files, of which the browser fetches the scripts in use.
import "@fontsource/fira-code/400.css";
import "@graphiql/react/style.css";
import "@graphiql/plugin-doc-explorer/style.css";
import "@graphiql/plugin-history/style.css";
import "graphiql/graphiql.css";
import "../graphiql/graphiql.css";
import { GraphiQL, HISTORY_PLUGIN } from "graphiql";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { fixTabSemantics } from "../graphiql/a11y";
import { examplesPlugin, EXAMPLES_TITLE } from "../graphiql/ExamplesPlugin";
import { examples, liveFixture, variablesText } from "../graphiql/examples";
import { landqlFetcher } from "../graphiql/fetcher";
import { mountLayout } from "../shared/layout";

/** Wide enough to open the examples pane beside the editors at first. */
const WIDE = "(min-width: 1000px)";

/** Whether GraphiQL has tabs of an earlier visit in localStorage (it then restores them). */
function hasStoredTabs(): boolean {
  try {
    return localStorage.getItem("graphiql:tabState") != null;
  } catch {
    return false;
  }
}

async function start(): Promise<void> {
  const main = mountLayout("graphiql");
  document.body.classList.add("graphiql-page");
  document.title = "GraphiQL · landql";

  // One small query for live IDs; the placeholder if it takes over 3 s or fails.
  const list = examples(await liveFixture(AbortSignal.timeout(3000)));
  // Passing `plugins` replaces GraphiQL's default list, which is the history alone.
  const plugins = [examplesPlugin(list), HISTORY_PLUGIN];
  const first = list[0];
  const firstVisit = !hasStoredTabs();

  createRoot(main).render(
    <StrictMode>
      <GraphiQL
        fetcher={landqlFetcher()}
        plugins={plugins}
        visiblePlugin={firstVisit && window.matchMedia(WIDE).matches ? EXAMPLES_TITLE : undefined}
        defaultTabs={[{ query: first.query, variables: variablesText(first) }]}
        // GraphiQL 5 fills the first tab's query from defaultTabs but not its variables.
        initialVariables={firstVisit ? variablesText(first) : undefined}
        defaultEditorToolsVisibility="variables"
        // Tokens stay in memory unless the user ticks "persist headers" in the settings.
        shouldPersistHeaders={false}
      >
        {/* The page's heading, in place of GraphiQL's logo (a link to its repository). */}
        <GraphiQL.Logo>
          <h1 className="landql-graphiql-title">
            Graph<em>i</em>QL
          </h1>
        </GraphiQL.Logo>
      </GraphiQL>
    </StrictMode>,
  );
  fixTabSemantics(main);
}

void start();
