//! Rules as data: the syntax of rule files, and the directed rules they define.
//!
//! A rule file is a sequence of forms; `;` starts a comment:
//!
//! ```text
//! (rewrite NAME LHS RHS [:let ?v (FUNCTION ARG…)]… [:when (GUARD ARG…)]…)
//! (birewrite NAME LHS RHS [:when (GUARD ARG…)]…)
//! (multirewrite NAME ((?a LHS₁) (?b LHS₂) …) ((?a RHS₁) (?b RHS₂) …) [:let …]… [:when …]…)
//! ```
//!
//! LHS and RHS are egg patterns over [`TensorLang`]: `(add ?x (fill 0.0 ?s))`. A
//! `rewrite` rewrites LHS to RHS; a `birewrite` both ways (two directed rules, `NAME` and
//! `NAME-rev`, so it counts twice); a `multirewrite` matches several patterns at once
//! (sharing variables) and rewrites each matched class `?a`, `?b` to its RHS.
//!
//! `:when` guards are named predicates over the matched classes
//! ([`crate::guards`]); `:let` binds a new attribute computed by a named function from
//! the matched classes ([`crate::functions`]), for the RHS to use. Arguments are pattern
//! variables or literal leaves (`1.0`, `2`, `[0,1]`, `act_relu`).
//!
//! Whatever the guards say, a rule applies only where its right-hand side type-checks and
//! has the type of the class it rewrites: guards state the semantic conditions, shapes are
//! checked for every application.

use crate::functions;
use crate::guards;
use egg::{ENodeOrVar, FromOp, Language, PatternAst, RecExpr, Var};
use saturate_egraph::sexp::split_forms;
use saturate_egraph::TensorLang;
use std::collections::HashSet;
use symbolic_expressions::Sexp;

/// A rule-file error: the file, the line the rule starts on, the rule, what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {}{reason}", rule.as_ref().map(|r| format!("rule `{r}`: ")).unwrap_or_default())]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub rule: Option<String>,
    pub reason: String,
}

/// A call to a guard or a function: its name and arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub args: Vec<Arg>,
}

/// An argument of a guard or function.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A pattern variable: its class.
    Var(Var),
    /// A literal attribute leaf.
    Leaf(TensorLang),
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}", self.name)?;
        for a in &self.args {
            match a {
                Arg::Var(v) => write!(f, " {v}")?,
                Arg::Leaf(l) => write!(f, " {l}")?,
            }
        }
        f.write_str(")")
    }
}

/// One side of a rule: a single pattern, or (for multi-rules) patterns bound to variables.
pub type Side = Vec<(Option<Var>, PatternAst<TensorLang>)>;

/// A rule in one direction, ready to run.
#[derive(Debug, Clone)]
pub struct DirectedRule {
    /// Unique in a library; a birewrite's reverse direction is `NAME-rev`.
    pub name: String,
    /// The rule file's stem: `algebra`, `layout`, …
    pub theme: String,
    pub file: String,
    pub line: usize,
    pub lhs: Side,
    pub rhs: Side,
    pub lets: Vec<(Var, Call)>,
    pub guards: Vec<Call>,
}

impl DirectedRule {
    pub fn is_multi(&self) -> bool {
        self.lhs.len() > 1 || self.lhs.first().is_some_and(|(v, _)| v.is_some())
    }

    pub fn lhs_text(&self) -> String {
        side_text(&self.lhs)
    }

    pub fn rhs_text(&self) -> String {
        side_text(&self.rhs)
    }

    /// Pattern variables of the left-hand side (and, for multi-rules, the bound ones).
    pub fn lhs_vars(&self) -> Vec<Var> {
        let mut vars = Vec::new();
        for (bound, pat) in &self.lhs {
            vars.extend(bound.iter().copied());
            for node in pat.as_ref() {
                if let ENodeOrVar::Var(v) = node {
                    if !vars.contains(v) {
                        vars.push(*v);
                    }
                }
            }
        }
        vars
    }
}

fn side_text(side: &Side) -> String {
    match side.as_slice() {
        [(None, p)] => p.to_string(),
        parts => parts
            .iter()
            .map(|(v, p)| format!("{} = {p}", v.map(|v| v.to_string()).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Parses a rule file into directed rules. `theme` is recorded on each rule; `file`
/// names the source in errors.
pub fn parse_rules(text: &str, file: &str, theme: &str) -> Result<Vec<DirectedRule>, RuleError> {
    let err = |line: usize, rule: Option<&str>, reason: String| RuleError {
        file: file.into(),
        line,
        rule: rule.map(String::from),
        reason,
    };
    let forms = split_forms(text).map_err(|(line, reason)| err(line, None, reason))?;
    let mut rules = Vec::new();
    let mut names = HashSet::new();
    for (line, form) in forms {
        let sexp = symbolic_expressions::parser::parse_str(&form)
            .map_err(|e| err(line, None, format!("malformed S-expression: {e}")))?;
        let parsed = parse_form(&sexp).map_err(|(rule, reason)| err(line, rule.as_deref(), reason))?;
        for mut rule in parsed {
            if !names.insert(rule.name.clone()) {
                return Err(err(line, Some(&rule.name), "a rule of this name is already defined in this file".into()));
            }
            rule.theme = theme.into();
            rule.file = file.into();
            rule.line = line;
            rules.push(rule);
        }
    }
    Ok(rules)
}

type FormError = (Option<String>, String);

fn parse_form(sexp: &Sexp) -> Result<Vec<DirectedRule>, FormError> {
    let items = match sexp {
        Sexp::List(items) if !items.is_empty() => items,
        _ => return Err((None, "expected (rewrite …), (birewrite …) or (multirewrite …)".into())),
    };
    let kind = atom(&items[0]).ok_or((None, "expected a rule keyword".to_string()))?;
    let name = items.get(1).and_then(atom).ok_or((None, format!("({kind} …) needs a name")))?;
    let fail = |reason: String| (Some(name.to_string()), reason);
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(fail("rule names use letters, digits, `-`, `_` and `.`".into()));
    }
    let (lhs, rhs, options) = match (kind, &items[2..]) {
        ("rewrite" | "birewrite" | "multirewrite", [lhs, rhs, options @ ..]) => (lhs, rhs, options),
        ("rewrite" | "birewrite" | "multirewrite", _) => {
            return Err(fail(format!("({kind} NAME LHS RHS …) needs both sides")))
        }
        (other, _) => return Err(fail(format!("unknown form `{other}`; expected rewrite, birewrite or multirewrite"))),
    };
    let (lhs, rhs) = if kind == "multirewrite" {
        (parse_multi_side(lhs).map_err(fail)?, parse_multi_side(rhs).map_err(fail)?)
    } else {
        (vec![(None, parse_pattern(lhs).map_err(fail)?)], vec![(None, parse_pattern(rhs).map_err(fail)?)])
    };
    let (lets, guards) = parse_options(options).map_err(fail)?;
    let rule =
        DirectedRule { name: name.into(), theme: String::new(), file: String::new(), line: 0, lhs, rhs, lets, guards };
    validate(&rule).map_err(fail)?;
    if kind != "birewrite" {
        return Ok(vec![rule]);
    }
    if !rule.lets.is_empty() {
        return Err(fail("a birewrite cannot have :let (the reverse direction would not bind it)".into()));
    }
    let reverse =
        DirectedRule { name: format!("{name}-rev"), lhs: rule.rhs.clone(), rhs: rule.lhs.clone(), ..rule.clone() };
    validate(&reverse).map_err(|reason| fail(format!("in the reverse direction: {reason}")))?;
    Ok(vec![rule, reverse])
}

fn atom(s: &Sexp) -> Option<&str> {
    match s {
        Sexp::String(t) => Some(t),
        _ => None,
    }
}

/// The text of an S-expression, atoms unquoted.
fn text(s: &Sexp) -> String {
    match s {
        Sexp::String(t) => t.clone(),
        Sexp::List(items) => format!("({})", items.iter().map(text).collect::<Vec<_>>().join(" ")),
        Sexp::Empty => "()".into(),
    }
}

fn parse_pattern(s: &Sexp) -> Result<PatternAst<TensorLang>, String> {
    let t = text(s);
    t.parse::<PatternAst<TensorLang>>()
        .map_err(|e| format!("pattern `{t}`: {}", describe_parse_error(&t, &e.to_string())))
}

fn describe_parse_error(pattern: &str, egg_message: &str) -> String {
    // egg reports an unknown op as a failure to build a node; say which op
    if let Some((op, operands)) = first_unknown_op(pattern) {
        return format!("unknown op `{op}` with {operands} operand(s)");
    }
    egg_message.to_string()
}

/// The first op in `pattern` that TensorLang does not know with its number of operands.
fn first_unknown_op(pattern: &str) -> Option<(String, usize)> {
    let sexp = symbolic_expressions::parser::parse_str(pattern).ok()?;
    fn walk(s: &Sexp) -> Option<(String, usize)> {
        let Sexp::List(items) = s else { return None };
        let (head, rest) = items.split_first()?;
        let op = atom(head)?;
        let dummy: Vec<egg::Id> = (0..rest.len()).map(egg::Id::from).collect();
        if TensorLang::from_op(op, dummy).is_err() {
            return Some((op.to_string(), rest.len()));
        }
        rest.iter().find_map(walk)
    }
    walk(&sexp)
}

fn parse_multi_side(s: &Sexp) -> Result<Side, String> {
    let Sexp::List(parts) = s else { return Err("a multirewrite side is a list of (?var PATTERN)".into()) };
    if parts.len() < 2 {
        return Err("a multirewrite matches at least two patterns".into());
    }
    parts
        .iter()
        .map(|part| match part {
            Sexp::List(pair) if pair.len() == 2 => {
                let var: Var =
                    atom(&pair[0]).and_then(|v| v.parse().ok()).ok_or("each part starts with a ?variable")?;
                Ok((Some(var), parse_pattern(&pair[1])?))
            }
            _ => Err("each part of a multirewrite side is (?var PATTERN)".to_string()),
        })
        .collect()
}

/// The `:let` bindings and `:when` guards of a rule.
type Clauses = (Vec<(Var, Call)>, Vec<Call>);

fn parse_options(options: &[Sexp]) -> Result<Clauses, String> {
    let (mut lets, mut guards) = (Vec::new(), Vec::new());
    let mut rest = options;
    while let Some((head, tail)) = rest.split_first() {
        match atom(head) {
            Some(":when") => {
                let call = tail.first().ok_or(":when needs a (GUARD ARG…)")?;
                guards.push(parse_call(call)?);
                rest = &tail[1..];
            }
            Some(":let") => {
                let var: Var =
                    tail.first().and_then(atom).and_then(|v| v.parse().ok()).ok_or(":let needs a ?variable")?;
                let call = tail.get(1).ok_or(":let ?v needs a (FUNCTION ARG…)")?;
                lets.push((var, parse_call(call)?));
                rest = &tail[2..];
            }
            _ => return Err(format!("unexpected `{}`; after the sides come :when and :let clauses", text(head))),
        }
    }
    Ok((lets, guards))
}

fn parse_call(s: &Sexp) -> Result<Call, String> {
    let Sexp::List(items) = s else { return Err(format!("`{}` is not a call like (guard ?x)", text(s))) };
    let name = items.first().and_then(atom).ok_or("a call starts with a name")?;
    let args = items[1..]
        .iter()
        .map(|a| {
            let t = atom(a)
                .ok_or_else(|| format!("argument `{}` of ({name} …) must be a variable or a literal", text(a)))?;
            if let Ok(v) = t.parse::<Var>() {
                return Ok(Arg::Var(v));
            }
            match TensorLang::from_op(t, vec![]) {
                Ok(leaf) if leaf.is_attribute() => Ok(Arg::Leaf(leaf)),
                _ => Err(format!("argument `{t}` of ({name} …) is not a ?variable or a literal")),
            }
        })
        .collect::<Result<_, String>>()?;
    Ok(Call { name: name.into(), args })
}

/// Checks names, arities, and that every variable is bound before it is used.
fn validate(rule: &DirectedRule) -> Result<(), String> {
    let mut bound: HashSet<Var> = rule.lhs_vars().into_iter().collect();
    for (var, call) in &rule.lets {
        let f = functions::lookup(&call.name)
            .ok_or_else(|| format!("unknown function `{}` (see `saturate rules --functions`)", call.name))?;
        check_call(call, f.arity, &bound)?;
        if !bound.insert(*var) {
            return Err(format!(":let {var} rebinds a variable"));
        }
    }
    for call in &rule.guards {
        let g = guards::lookup(&call.name)
            .ok_or_else(|| format!("unknown guard `{}` (see `saturate rules --guards`)", call.name))?;
        check_call(call, g.arity, &bound)?;
    }
    for (var, pat) in &rule.rhs {
        if let Some(v) = var {
            if !bound.contains(v) {
                return Err(format!("the right-hand side rewrites {v}, which the left-hand side does not bind"));
            }
        }
        for node in pat.as_ref() {
            if let ENodeOrVar::Var(v) = node {
                if !bound.contains(v) {
                    return Err(format!("{v} is used on the right-hand side but bound nowhere"));
                }
            }
        }
    }
    if rule.rhs.len() != rule.lhs.len() && rule.is_multi() {
        return Err("a multirewrite needs as many right-hand parts as left-hand ones".into());
    }
    Ok(())
}

fn check_call(call: &Call, arity: usize, bound: &HashSet<Var>) -> Result<(), String> {
    if call.args.len() != arity {
        return Err(format!("`{}` takes {arity} argument(s), given {}", call.name, call.args.len()));
    }
    for a in &call.args {
        if let Arg::Var(v) = a {
            if !bound.contains(v) {
                return Err(format!("{call} uses {v}, which is not bound before it"));
            }
        }
    }
    Ok(())
}

/// A pattern as a RecExpr, for code that walks it.
pub fn pattern_nodes(p: &PatternAst<TensorLang>) -> &RecExpr<ENodeOrVar<TensorLang>> {
    p
}

/// Whether a pattern node is an op node (not a variable or leaf).
pub fn is_op(n: &ENodeOrVar<TensorLang>) -> bool {
    matches!(n, ENodeOrVar::ENode(e) if !e.is_leaf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_with_guards_and_lets() {
        let text = "; comment\n(rewrite add-zero (add ?x (fill 0.0 ?s)) ?x)\n\
                    (birewrite sub-as-add (sub ?a ?b) (add ?a (neg ?b)))\n\
                    (rewrite tt (transpose (transpose ?x ?p) ?q) (transpose ?x ?r) :let ?r (compose-perm ?p ?q))\n\
                    (rewrite relu-nonneg (relu ?x) ?x :when (non-negative ?x))\n";
        let rules = parse_rules(text, "t.rules", "t").unwrap();
        let names: Vec<_> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["add-zero", "sub-as-add", "sub-as-add-rev", "tt", "relu-nonneg"]);
        assert_eq!(rules[1].line, 3);
        assert_eq!(rules[3].lets.len(), 1);
        assert_eq!(rules[4].guards[0].to_string(), "(non-negative ?x)");
    }

    #[test]
    fn errors_name_the_file_line_and_rule() {
        let cases = [
            ("(rewrite a (add ?x ?y) ?z)", "t.rules:1: rule `a`: ?z is used on the right-hand side but bound nowhere"),
            ("\n(rewrite b (frob ?x) ?x)", "t.rules:2: rule `b`: pattern `(frob ?x)`: unknown op `frob`"),
            ("(rewrite c (relu ?x) ?x :when (no-such-guard ?x))", "unknown guard `no-such-guard`"),
            (
                "(rewrite d (relu ?x) ?x)\n(rewrite d (abs ?x) ?x)",
                "t.rules:2: rule `d`: a rule of this name is already defined",
            ),
            ("(rewrite e (relu ?x) ?x :when (non-negative ?x ?x))", "`non-negative` takes 1 argument(s), given 2"),
            ("(rewrite f (relu ?x)", "this form is not closed"),
            ("(rewrite g (relu ?x) ?x :when (non-negative ?y))", "uses ?y, which is not bound"),
            ("(birewrite h (relu ?x) (fill 0.0 [1]))", "in the reverse direction: ?x is used on the right-hand side"),
        ];
        for (text, expected) in cases {
            let e = parse_rules(text, "t.rules", "t").unwrap_err().to_string();
            assert!(e.contains(expected), "{text}\n→ {e}\nexpected {expected}");
        }
    }
}
