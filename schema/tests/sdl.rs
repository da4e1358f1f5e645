//! The exported SDL is checked in (schema/schema.graphql) so that clients and reviewers see
//! every change to the contract. This test fails when the schema changes without it; run
//! `LANDQL_BLESS=1 cargo test -p landql-schema --test sdl` to rewrite the file, and review
//! the diff against design/api.md.

use std::path::Path;

#[test]
fn checked_in_sdl_matches_the_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let sdl = schema::sdl();
    if std::env::var_os("LANDQL_BLESS").is_some() {
        std::fs::write(&path, &sdl).expect("writing schema.graphql");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == sdl,
        "schema/schema.graphql is not the schema's SDL; if the change is intended, run \
         LANDQL_BLESS=1 cargo test -p landql-schema --test sdl and commit the file"
    );
}

/// design/api.md's names are a contract: each must be in the SDL.
#[test]
fn api_md_names_are_all_there() {
    let sdl = schema::sdl();
    for name in [
        "enum Consistency",
        "property(id: ID!, consistency: Consistency = FRESH, asOfBlock: Int, asOf: DateTime): Property",
        "properties(filter: PropertyFilter, orderBy: PropertyOrder = ID_ASC, first: Int = 20, after: String): PropertyConnection!",
        "search(text: String!, filter: PropertyFilter, first: Int = 20, after: String): SearchResult!",
        "owner(id: ID!): Owner",
        "owners(name: String!, first: Int = 20, after: String): OwnerConnection!",
        "locations(state: String, district: String, mandal: String): [LocationCount!]!",
        "propertyHistory(id: ID!, first: Int = 20, after: String): PropertyVersionConnection!",
        "verifyProperty(id: ID!, asOfBlock: Int): Verification!",
        "_meta: Meta!",
        "propertyChanged(id: ID!): PropertyChange!",
        "propertiesChanged(filter: PropertyFilter): PropertyChange!",
        "progress: Meta!",
        "enum VerificationOutcome",
        "MISSING_IN_REPLICA",
        "LEDGER_UNAVAILABLE",
        "replicaLagBlocks: Int!",
        "totalCount: Int!",
        "UPDATED_AT_DESC",
    ] {
        assert!(sdl.contains(name), "the SDL lacks {name:?}:\n{sdl}");
    }
}
