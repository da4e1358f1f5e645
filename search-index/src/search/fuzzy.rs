//! Typo matching whose first letter must be right: a Levenshtein automaton behind a gate
//! on the first byte.
//!
//! Why not tantivy's `FuzzyTermQuery`: its automaton walks every branch of the term
//! dictionary that is within the distance of the word, and in a dictionary of names that
//! is most of it — tier 2 (six automata per query word) was 18 % of a search's CPU at
//! 100 k records. The ranking already charges a first-letter typo double (search.md,
//! after Meilisearch), so a word of 5–8 letters could never use one, and people rarely get
//! the first letter of a name wrong; gating on it lets the dictionary walk skip every
//! other first letter (about 25 of 26 subtrees).

use std::sync::{Arc, OnceLock};

use levenshtein_automata::{Distance, LevenshteinAutomatonBuilder, DFA, SINK_STATE};
use tantivy::query::{AutomatonWeight, EnableScoring, Query, Weight};
use tantivy::schema::Field;
use tantivy_fst::Automaton;

/// Builders for distances 1 and 2, transpositions costing one (building one takes
/// milliseconds, so they are made once per process).
fn builder(distance: u8) -> &'static LevenshteinAutomatonBuilder {
    static B: [OnceLock<LevenshteinAutomatonBuilder>; 2] = [OnceLock::new(), OnceLock::new()];
    let i = usize::from(distance.clamp(1, 2) - 1);
    B[i].get_or_init(|| LevenshteinAutomatonBuilder::new(distance.clamp(1, 2), true))
}

/// Terms within `distance` of a word that start with the word's first byte.
pub(super) struct FirstLetterFuzzy {
    first: u8,
    dfa: DFA,
}

impl FirstLetterFuzzy {
    /// `None` for an empty word.
    pub(super) fn new(word: &str, distance: u8) -> Option<Arc<FirstLetterFuzzy>> {
        let first = *word.as_bytes().first()?;
        Some(Arc::new(FirstLetterFuzzy {
            first,
            dfa: builder(distance).build_dfa(word),
        }))
    }
}

impl Automaton for FirstLetterFuzzy {
    /// `None` before the first byte.
    type State = Option<u32>;

    fn start(&self) -> Option<u32> {
        None
    }

    fn is_match(&self, state: &Option<u32>) -> bool {
        matches!(state, Some(s) if matches!(self.dfa.distance(*s), Distance::Exact(_)))
    }

    fn can_match(&self, state: &Option<u32>) -> bool {
        *state != Some(SINK_STATE)
    }

    fn accept(&self, state: &Option<u32>, byte: u8) -> Option<u32> {
        match state {
            None if byte == self.first => Some(self.dfa.transition(self.dfa.initial_state(), byte)),
            None => Some(SINK_STATE),
            Some(s) => Some(self.dfa.transition(*s, byte)),
        }
    }
}

/// A query over one field with a shared automaton (one per query word, used on the fields
/// of every name group). All hits score alike, as with tantivy's fuzzy query.
#[derive(Clone)]
pub(super) struct FuzzyQuery {
    pub(super) field: Field,
    pub(super) automaton: Arc<FirstLetterFuzzy>,
}

impl std::fmt::Debug for FuzzyQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuzzyQuery")
            .field("field", &self.field)
            .field("first", &char::from(self.automaton.first))
            .finish()
    }
}

impl Query for FuzzyQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(AutomatonWeight::<FirstLetterFuzzy>::new(
            self.field,
            Arc::clone(&self.automaton),
        )))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Whether automaton `a` accepts `term`, fed byte by byte as the term dictionary would.
    pub(crate) fn accepts<A: Automaton>(a: &A, term: &str) -> bool {
        let mut s = a.start();
        for b in term.bytes() {
            s = a.accept(&s, b);
            if !a.can_match(&s) {
                return false;
            }
        }
        a.is_match(&s)
    }

    #[test]
    fn typos_after_the_first_letter_only() {
        let a = FirstLetterFuzzy::new("ramesh", 1).unwrap();
        assert!(accepts(&*a, "ramesh"));
        assert!(accepts(&*a, "rmaesh"));
        assert!(accepts(&*a, "ramsh"));
        assert!(!accepts(&*a, "bamesh"));
        assert!(!accepts(&*a, "rmsh"));
        let a = FirstLetterFuzzy::new("satyanarayana", 2).unwrap();
        assert!(accepts(&*a, "satynarayna"));
        assert!(!accepts(&*a, "datyanarayana"));
    }
}
