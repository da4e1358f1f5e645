//! Which name a written name is: the generator's own answer, for judging search.
//!
//! The demo data writes one person's name in many ways — spelling variants (Lakshmi, Laxmi,
//! Lakshmee), four scripts, surname first or last, initials with or without a space, given
//! names run together ("Ravikumar"), all capitals. A search benchmark that expects only the
//! records with the *same spelling* as its query is wrong whenever the query is written
//! another way: every record of the same name is as good an answer. [`NameKey`] names the
//! name behind the writing, from the generator's tables alone (not from the search's
//! analysis, which is what such a benchmark judges).

use std::collections::HashMap;

use super::names::{Names, INITIALS};

/// One part of a written name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NamePart {
    /// A name of the table (any spelling, any script).
    Name(u16),
    /// A word the tables do not know (a clerk's typo), lower case as written.
    Unknown(String),
}

/// A written name's parts in a fixed order: two writings with equal keys are the same
/// name, whatever the spelling, script, order of the parts or capitals. Initials are left
/// out: "K. Ravi Kumar" is as good an answer to "ravi kumar" as "Ravi Kumar" is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NameKey(Vec<NamePart>);

impl NameKey {
    /// The parts, in the key's order.
    pub fn parts(&self) -> &[NamePart] {
        &self.0
    }

    /// This key with `part` added.
    pub fn with(&self, part: NamePart) -> NameKey {
        let mut parts = self.0.clone();
        parts.push(part);
        parts.sort();
        NameKey(parts)
    }
}

/// Every spelling of every name and initial → what it is (`None`: an initial).
pub(super) struct Identifier {
    words: HashMap<String, Option<NamePart>>,
    /// The longest spelling, in chars (bounds the split of run-together names).
    longest: usize,
}

impl Identifier {
    pub(super) fn new(names: &Names) -> Identifier {
        let mut words = HashMap::new();
        // Initials first, so that a one-letter word is an initial even where a name's
        // spelling would also fit.
        for forms in INITIALS {
            for f in forms {
                words.entry(f.to_lowercase()).or_insert(None);
            }
        }
        // Two names of the table that share a spelling ("Setty" is a surname of its own and
        // a spelling of Shetty) cannot be told apart in writing: one name here. Each
        // spelling maps to the smallest name it connects to (union-find by spelling).
        let spellings = |t: &super::names::Token| -> Vec<String> {
            t.latin
                .iter()
                .chain(t.native.iter())
                // Written names are read with their dots dropped ("Md." → "md").
                .map(|s| s.to_lowercase().replace('.', "").trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let mut root: Vec<u16> = (0..names.tokens.len() as u16).collect();
        fn find(root: &mut [u16], mut i: u16) -> u16 {
            while root[i as usize] != i {
                root[i as usize] = root[root[i as usize] as usize];
                i = root[i as usize];
            }
            i
        }
        let mut first: HashMap<String, u16> = HashMap::new();
        for (i, t) in names.tokens.iter().enumerate() {
            for s in spellings(t) {
                let other = *first.entry(s).or_insert(i as u16);
                let (a, b) = (find(&mut root, other), find(&mut root, i as u16));
                root[a.max(b) as usize] = a.min(b);
            }
        }
        for (s, i) in first {
            let r = find(&mut root, i);
            words.entry(s).or_insert(Some(NamePart::Name(r)));
        }
        let longest = names
            .tokens
            .iter()
            .flat_map(|t| t.latin.iter().chain(t.native.iter()))
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0);
        Identifier { words, longest }
    }

    pub(super) fn key(&self, written: &str) -> NameKey {
        let words: Vec<String> = written
            .split(|c: char| c.is_whitespace() || c == '.')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let mut parts = Vec::new();
        let mut i = 0;
        while i < words.len() {
            // A spelling of more than one word first ("Chandra Sekhar").
            let longest = (i + 1..=(i + 3).min(words.len()))
                .rev()
                .find_map(|j| self.words.get(&words[i..j].join(" ")).map(|p| (j, p)));
            if let Some((j, p)) = longest {
                parts.extend(p.clone());
                i = j;
                continue;
            }
            if let Some(split) = self.run_together(&words[i]) {
                parts.extend(split);
            } else {
                parts.push(NamePart::Unknown(words[i].clone()));
            }
            i += 1;
        }
        parts.sort();
        NameKey(parts)
    }

    /// The names some spelling of which starts with `typed` (lower case): what an unfinished
    /// word may become.
    pub(super) fn starting_with(&self, typed: &str) -> Vec<NamePart> {
        let typed = typed.to_lowercase();
        let mut out: Vec<NamePart> = self
            .words
            .iter()
            .filter(|(w, _)| w.starts_with(&typed))
            .filter_map(|(_, p)| p.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// "ravikumar" → Ravi, Kumar: the fewest names of the table that spell the word when
    /// run together (at least two), if any do.
    fn run_together(&self, word: &str) -> Option<Vec<NamePart>> {
        let chars: Vec<char> = word.chars().collect();
        let n = chars.len();
        // best[i]: the fewest names spelling chars[..i], and the start of the last one.
        let mut best: Vec<Option<(usize, usize)>> = vec![None; n + 1];
        best[0] = Some((0, 0));
        for end in 1..=n {
            for start in end.saturating_sub(self.longest)..end {
                let Some((count, _)) = best[start] else {
                    continue;
                };
                let piece: String = chars[start..end].iter().collect();
                if matches!(self.words.get(&piece), Some(Some(NamePart::Name(_))))
                    && best[end].is_none_or(|(c, _)| count + 1 < c)
                {
                    best[end] = Some((count + 1, start));
                }
            }
        }
        let (count, _) = best[n]?;
        if count < 2 {
            return None;
        }
        let mut parts = Vec::with_capacity(count);
        let mut end = n;
        while end > 0 {
            let (_, start) = best[end]?;
            let piece: String = chars[start..end].iter().collect();
            parts.push(self.words.get(&piece)?.clone()?);
            end = start;
        }
        Some(parts)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::super::names::{Script, Spec};
    use super::super::{Rng8, NAMES_TSV};
    use super::*;

    #[test]
    fn every_writing_of_a_name_has_its_key() {
        let names = Names::parse(NAMES_TSV).expect("names.tsv");
        let id = Identifier::new(&names);
        let mut rng = Rng8::seed_from_u64(7);
        let (mut checked, mut run_together) = (0, 0);
        let mut differ: Vec<(String, String)> = Vec::new();
        for n in 0..3000u32 {
            let spec = names.new_spec(&mut rng, (n % 3) as usize, Script::Latin, [0; 16], None);
            let mut written = String::new();
            names.write_name(&spec, Script::Latin, &mut written);
            let key = id.key(&written);
            assert!(
                key.parts().iter().all(|p| matches!(p, NamePart::Name(_))),
                "{written:?} has a word the tables do not know: {key:?}"
            );
            // Other spelling habits, other orders, other scripts, capitals: the same key.
            for (vseed, order) in [(n + 1, 0), (n + 7, 1), (n + 13, 3)] {
                // Initials without a surname drop a part: not another writing of the name.
                if spec.order == 2 && spec.flags & 2 != 0 {
                    continue;
                }
                let other = Spec {
                    vseed,
                    order,
                    ..spec
                };
                for script in Script::ALL {
                    if !other.writable_in(script) {
                        continue;
                    }
                    let mut again = String::new();
                    names.write_name(&other, script, &mut again);
                    run_together += usize::from(order == 3 && script == Script::Latin);
                    if id.key(&again) != key {
                        differ.push((written.clone(), again.clone()));
                    }
                    assert_eq!(
                        id.key(&again.to_uppercase()),
                        id.key(&again),
                        "{again:?} in capitals"
                    );
                    checked += 1;
                }
            }
        }
        assert!(
            checked > 5000 && run_together > 1000,
            "{checked} {run_together}"
        );
    }

    #[test]
    fn different_names_and_typos_have_other_keys() {
        let names = Names::parse(NAMES_TSV).expect("names.tsv");
        let id = Identifier::new(&names);
        assert_eq!(id.key("Lakshmi Reddy"), id.key("LAXMI reddi"));
        assert_eq!(id.key("K. Ravi Kumar"), id.key("Ravikumar"));
        assert_ne!(id.key("Lakshmi Reddy"), id.key("Lakshmi Rao"));
        assert_ne!(id.key("Lakshmi Reddy"), id.key("Lakshmi Reddy Reddy"));
        let typo = id.key("Lakshmi Reddyy");
        assert!(
            typo.parts().contains(&NamePart::Unknown("reddyy".into())),
            "{typo:?}"
        );
    }
}
