//! [`FieldNames`]: the field names a run of plans has made, handed out again
//! instead of made anew.
//!
//! A [`FieldName`] is a shared string. Planning a write names every field
//! of every record it sets, and in a batch the records mostly have the same
//! fields: making each name anew allocated a string and freed it again per
//! field of every record, about 4 % of a `put_many`'s instructions
//! (callgrind). A name made once and cloned costs a reference count.
//!
//! This module owns only that reuse; what makes a name valid is `ids.rs`'s.

use crate::error::CoreError;
use crate::ids::FieldName;

/// Most names kept: enough for the fields of a batch's records, few enough
/// that a name not kept is looked for among them quickly.
const KEPT: usize = 64;

/// Field names made by earlier calls, reused when asked for again.
///
/// ```
/// use shoal_core::FieldNames;
///
/// let mut names = FieldNames::default();
/// let first = names.name("title").unwrap();
/// let again = names.name("title").unwrap();
/// assert_eq!(first, again);
/// assert!(names.name("").is_err(), "an invalid name is refused as FieldName::new refuses it");
/// ```
#[derive(Debug)]
pub struct FieldNames {
    /// Up to `keep` names, in the order first asked for.
    kept: Vec<FieldName>,
    /// How many names it keeps: [`KEPT`], or none for a single plan.
    keep: usize,
    /// Where the name after the last one found is: records list their fields
    /// in one order, so it is usually the next asked for.
    next: usize,
}

impl Default for FieldNames {
    /// Keeps up to 64 names.
    fn default() -> Self {
        Self::for_plans(usize::MAX)
    }
}

impl FieldNames {
    /// One for `plans` plans: it keeps no name for a single plan, where
    /// keeping them would only add work.
    pub fn for_plans(plans: usize) -> Self {
        Self {
            kept: Vec::new(),
            keep: if plans > 1 { KEPT } else { 0 },
            next: 0,
        }
    }

    /// `name` as a field name: one made before if there is one, else a new
    /// one, validated as [`FieldName::new`] validates it.
    pub fn name(&mut self, name: &str) -> Result<FieldName, CoreError> {
        let at = match self.kept.get(self.next) {
            Some(kept) if kept.as_str() == name => Some(self.next),
            _ => self.kept.iter().position(|kept| kept.as_str() == name),
        };
        if let Some(at) = at {
            self.next = at + 1;
            return Ok(self.kept[at].clone());
        }
        let made = FieldName::new(name)?;
        if self.kept.len() < self.keep {
            self.kept.push(made.clone());
            self.next = self.kept.len();
        }
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_the_name_asked_for_in_any_order_and_past_what_it_keeps() {
        let mut names = FieldNames::default();
        let asked: Vec<String> = (0..KEPT + 10).map(|i| format!("f{i}")).collect();
        // In order, again in order, then backwards: each time the name asked for.
        for round in 0..3 {
            let order: Vec<&String> = if round < 2 {
                asked.iter().collect()
            } else {
                asked.iter().rev().collect()
            };
            for name in order {
                let given = names.name(name).unwrap();
                assert_eq!(given.as_str(), name.as_str());
                if let Some(kept) = names.kept.iter().find(|k| k.as_str() == name) {
                    // A kept name is handed out again, not made anew.
                    assert!(std::ptr::eq(kept.as_str(), given.as_str()), "{name} reused");
                }
            }
        }
        assert_eq!(names.kept.len(), KEPT, "keeps at most {KEPT}");
    }

    #[test]
    fn keeps_nothing_for_a_single_plan() {
        let mut names = FieldNames::for_plans(1);
        assert_eq!(names.name("title").unwrap().as_str(), "title");
        assert!(names.kept.is_empty());
        let mut names = FieldNames::for_plans(2);
        let first = names.name("title").unwrap();
        assert_eq!(names.kept.len(), 1);
        let again = names.name("title").unwrap();
        assert!(
            std::ptr::eq(first.as_str(), again.as_str()),
            "the same name, not a copy"
        );
    }

    #[test]
    fn refuses_what_field_name_refuses() {
        let mut names = FieldNames::default();
        names.name("ok").unwrap();
        for bad in ["", "a\u{7}b", &"x".repeat(129)] {
            assert_eq!(
                names.name(bad).unwrap_err().to_string(),
                FieldName::new(bad).unwrap_err().to_string()
            );
        }
        assert_eq!(names.kept.len(), 1, "a refused name is not kept");
    }
}
