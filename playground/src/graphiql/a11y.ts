// GraphiQL 5 marks each editor tab `role="tab"` yet puts two buttons inside it (select, close),
// which axe rightly reports (nested-interactive: a screen reader cannot reach the inner
// buttons as such). Its tabs have no arrow-key behaviour either, so present them as what they
// are: a list of buttons, the active one marked `aria-current`. React only writes these
// attributes when their values change, so a MutationObserver keeps the fix as tabs come
// and go or switch.

function fix(root: ParentNode): void {
  for (const list of root.querySelectorAll(".graphiql-tabs[role='tablist']")) list.removeAttribute("role");
  for (const tab of root.querySelectorAll<HTMLElement>("li.graphiql-tab[role], li.graphiql-tab[aria-selected]")) {
    tab.removeAttribute("role");
    const selected = tab.getAttribute("aria-selected");
    if (selected == null) continue;
    tab.removeAttribute("aria-selected");
    const button = tab.querySelector(".graphiql-tab-button");
    if (selected === "true") button?.setAttribute("aria-current", "true");
    else button?.removeAttribute("aria-current");
  }
}

/** Keep GraphiQL's tab strip under `root` accessible; returns the observer (to disconnect). */
export function fixTabSemantics(root: HTMLElement): MutationObserver {
  const observer = new MutationObserver(() => fix(root));
  observer.observe(root, { subtree: true, childList: true, attributes: true, attributeFilter: ["role", "aria-selected"] });
  fix(root);
  return observer;
}
