// The history timeline: every version, newest first, each with the event, when it was
// committed, where on the chain (block, transaction index, tx id, channel), and what it
// changed compared with the version before it.
import { h } from "../../shared/dom";
import { t } from "../../shared/i18n";
import { eventLabel, landTypeLabel, statusLabel } from "../common";
import { dateTime, indianNumber, rupees } from "../format";
import type { RecordFields, Version } from "./api";

/** The fields a version can change, each with its label and how it reads. */
const FIELDS: [string, (r: RecordFields) => string][] = [
  ["p.changedOwners", (r) => r.owners.map((o) => `${o.owner.name} (${o.sharePct}%)`).join(", ")],
  ["p.changedStatus", (r) => statusLabel(r.verificationStatus)],
  ["p.changedLandType", (r) => landTypeLabel(r.landType)],
  ["p.changedArea", (r) => r.areaText],
  ["p.changedValue", (r) => rupees(r.marketValue)],
  ["p.changedSurvey", (r) => r.surveyNo],
  ["p.changedKhata", (r) => r.khataNo ?? "—"],
  ["p.changedPlace", (r) => [r.location.village, r.location.mandal, r.location.district].join(", ")],
];

/** "Status: Pending → Verified" lines; for the first version, its owners and status. */
function changes(v: Version, before: Version | undefined): HTMLElement {
  if (!before) {
    return h(
      "ul",
      { class: "tl-changes" },
      FIELDS.slice(0, 2).map(([k, f]) => h("li", {}, h("span", { class: "muted" }, `${t(k)}: `), f(v.record))),
    );
  }
  const lines = FIELDS.filter(([, f]) => f(v.record) !== f(before.record)).map(([k, f]) =>
    h(
      "li",
      {},
      h("span", { class: "muted" }, `${t(k)}: `),
      h("del", {}, f(before.record)),
      h("span", { "aria-hidden": "true" }, " → "),
      h("ins", {}, f(v.record)),
    ),
  );
  return lines.length ? h("ul", { class: "tl-changes" }, lines) : h("p", { class: "tl-changes muted small" }, t("p.noChange"));
}

/** The timeline, newest first; `currentTx` (the served record's transaction) is marked. */
export function timeline(versions: Version[], currentTx: string): HTMLElement {
  const items = versions.map((v, i) => ({ v, before: versions[i - 1] })).reverse();
  return h(
    "ol",
    { class: "timeline", reversed: true },
    items.map(({ v, before }) =>
      h(
        "li",
        { class: `tl-item${v.version.txId === currentTx ? " current" : ""}`, "data-event": v.event, "data-block": v.version.blockNumber },
        h(
          "div",
          { class: "tl-head" },
          h("strong", {}, eventLabel(v.event)),
          v.version.txId === currentTx ? h("span", { class: "badge st-verified" }, t("p.current")) : null,
          h("time", { datetime: v.committedAt, class: "muted" }, dateTime(v.committedAt)),
        ),
        changes(v, before),
        h(
          "p",
          { class: "tl-tx small muted" },
          t("p.block", { n: indianNumber(v.version.blockNumber) }),
          " · ",
          t("p.txIndex", { n: v.version.txIndex }),
          " · ",
          t("p.channel", { c: v.version.channel }),
          h("br", {}),
          h("code", { class: "hash" }, v.version.txId),
        ),
      ),
    ),
  );
}
