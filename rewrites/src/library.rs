//! A [`Library`]: the directed rules saturation runs, from the built-in rule files and
//! any the user adds.

use crate::apply::{to_rewrite, ApplyCounts, Provenance};
use crate::rule::{parse_rules, DirectedRule, RuleError};
use saturate_egraph::{ShapeAnalysis, TensorLang};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// A set of directed rules with unique names.
#[derive(Debug, Clone, Default)]
pub struct Library {
    pub rules: Vec<DirectedRule>,
}

impl Library {
    /// The rules of every file in `rewrites/rules/`, embedded at build time.
    pub fn builtin() -> Result<Library, RuleError> {
        let mut lib = Library::default();
        for (theme, file, text) in BUILTIN_RULE_FILES {
            lib.add_text(text, &format!("rewrites/rules/{file}"), theme)?;
        }
        Ok(lib)
    }

    /// Adds the rules of a file; its stem is their theme.
    pub fn add_file(&mut self, path: &Path) -> Result<(), RuleError> {
        let text = std::fs::read_to_string(path).map_err(|e| RuleError {
            file: path.display().to_string(),
            line: 0,
            rule: None,
            reason: format!("cannot read the rule file: {e}"),
        })?;
        let theme = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        self.add_text(&text, &path.display().to_string(), &theme)
    }

    /// Adds the rules of `text`; a name already in the library is an error.
    pub fn add_text(&mut self, text: &str, file: &str, theme: &str) -> Result<(), RuleError> {
        let rules = parse_rules(text, file, theme)?;
        for rule in rules {
            if let Some(existing) = self.rules.iter().find(|r| r.name == rule.name) {
                return Err(RuleError {
                    file: rule.file.clone(),
                    line: rule.line,
                    rule: Some(rule.name.clone()),
                    reason: format!("a rule of this name is already defined at {}:{}", existing.file, existing.line),
                });
            }
            self.rules.push(rule);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&DirectedRule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// Directed rules per theme.
    pub fn count_by_theme(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in &self.rules {
            *counts.entry(r.theme.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// The egg rewrites, with a counter of rejected applications per rule.
    pub fn compile(&self) -> Compiled {
        let counts: HashMap<String, Arc<ApplyCounts>> =
            self.rules.iter().map(|r| (r.name.clone(), Arc::default())).collect();
        let provenance = Provenance::default();
        let rewrites = self.rules.iter().map(|r| to_rewrite(r, counts[&r.name].clone(), provenance.clone())).collect();
        Compiled { rewrites, counts, provenance }
    }
}

/// A library ready to run.
pub struct Compiled {
    pub rewrites: Vec<egg::Rewrite<TensorLang, ShapeAnalysis>>,
    pub counts: HashMap<String, Arc<ApplyCounts>>,
    /// The nodes rules added, with the rule that added each.
    pub provenance: Provenance,
}
