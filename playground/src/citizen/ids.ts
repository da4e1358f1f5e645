// Recognising a property ID typed into the search box (the forms are in ledger/src/id.rs:
// LRI-IND-TS-2026-03-00567 sharded, LRI-IND-TS-2026-0300567 encoded, LRI-IND-TS-2026-000123
// legacy; any case, dashes or spaces optional). The server is the judge of validity — here
// we only decide whether the person *meant* an ID, so that Enter takes them to its page,
// where a malformed one gets the API's own explanation.

/** Upper-case letters and digits only: how the search index keys IDs typed any way. */
export function squashId(text: string): string {
  return text.replace(/[^0-9A-Za-z]/g, "").toUpperCase();
}

/** A complete ID in some form (the same test the search index routes by). */
export function looksLikeId(text: string): boolean {
  const s = squashId(text);
  return s.length >= 18 && /^LRIIND[A-Z]{2}\d+$/.test(s);
}

/** The person started an ID ("LRI-IND…", "lri ind …"), complete or not. */
export function meansId(text: string): boolean {
  return /^\s*lri[\s-]*ind/i.test(text);
}

/** The property page of an ID as typed (trimmed; the server accepts any case). */
export function propertyHref(id: string): string {
  return `/property/${encodeURIComponent(id.trim())}`;
}
