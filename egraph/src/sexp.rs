//! The S-expression graph format: a readable, writable text form of a [`Graph`].
//!
//! A file is a sequence of forms; `;` starts a comment:
//!
//! ```text
//! (saturate-graph 1)
//! (input %x f32 [1,16])                        ; model inputs, in call order
//! (weight %w f32 [16,4] (file "mlp.weights" 0)) ; raw little-endian data in a side file
//! (weight %b f32 [4] (values 0.5 -1.0 0.0 2.0)) ; small weights inline
//! (let $1 (add (matmul %x %w) %b))             ; any TensorLang expression
//! (let %h (relu $1))                           ; let names start with $ or %
//! (output "y" %h)                              ; model outputs, by name
//! ```
//!
//! Expressions use [`TensorLang`] syntax; `%name` and `$name` atoms refer to earlier
//! inputs, weights and lets. An input whose model name is not a valid atom keeps it as
//! a string: `(input %a_b f32 [2] "a b")`.
//!
//! The writer binds every op node to a `$N` let, inlines leaves and `fill` constants,
//! and writes the graph in canonical order, so `write(read(write(g))) == write(g)` and
//! `read(write(g)) == g.canonicalize()`: the round trip is exact.

use crate::graph::{Graph, GraphBuilder, Port};
use crate::lang::is_valid_name;
use crate::{DType, Error, Float, Result, Tensor, TensorLang, TensorType};
use egg::{FromOp, Id, Language};
use ndarray::{ArrayD, IxDyn};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use symbolic_expressions::Sexp;

/// Weights with at most this many elements are written inline; larger ones go to the
/// side file, which keeps the text readable.
const INLINE_LIMIT: usize = 16;

/// The first form of every file, naming the format and its version.
const HEADER: &str = "(saturate-graph 1)";

/// Reads a graph from a `.sexp` file; side files are resolved next to it.
pub fn read_file(path: &Path) -> Result<Graph> {
    let text =
        std::fs::read_to_string(path).map_err(|source| Error::Io { action: "read", path: path.into(), source })?;
    parse(&text, &path.display().to_string(), path.parent())
}

/// Parses graph text. `file` names the source in errors; `base_dir` resolves side files
/// (`None`: side files are an error).
pub fn parse(text: &str, file: &str, base_dir: Option<&Path>) -> Result<Graph> {
    let mut reader = Reader { file, base_dir, b: GraphBuilder::default(), env: HashMap::new(), line: 0 };
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let mut weights = BTreeMap::new();
    let forms = split_forms(text).map_err(|(line, reason)| reader.err_at(line, reason))?;
    if forms.first().map(|(_, f)| f.trim()) != Some(HEADER) {
        return Err(reader.err_at(forms.first().map_or(1, |f| f.0), format!("a graph file starts with {HEADER}")));
    }
    for (line, form) in &forms[1..] {
        reader.line = *line;
        let sexp = symbolic_expressions::parser::parse_str(form)
            .map_err(|e| reader.err(format!("malformed S-expression: {e}")))?;
        let items = match &sexp {
            Sexp::List(items) if !items.is_empty() => items,
            _ => return Err(reader.err("expected a form like (input …), (weight …), (let …) or (output …)")),
        };
        match (atom(&items[0]), &items[1..]) {
            (Some("input"), [name, dtype, shape, rest @ ..]) if rest.len() <= 1 => {
                let (name, ty) = reader.declaration(name, dtype, shape)?;
                let id = reader.b.input(&name, &ty);
                let model_name = match rest.first() {
                    Some(s) => reader.atom_text(s, "the input's model name")?.to_string(),
                    None => name.clone(),
                };
                reader.bind(&format!("%{name}"), id)?;
                inputs.push(Port { name: model_name, id });
            }
            (Some("weight"), [name, dtype, shape, data]) => {
                let (name, ty) = reader.declaration(name, dtype, shape)?;
                let tensor = reader.weight_data(&ty, data)?;
                let id = reader.b.weight(&name, &ty);
                reader.bind(&format!("%{name}"), id)?;
                weights.insert(name, tensor);
            }
            (Some("let"), [name, body]) => {
                let name = reader.atom_text(name, "a let name")?.to_string();
                if !(name.starts_with('$') || name.starts_with('%')) || name.len() < 2 {
                    return Err(reader.err(format!("let name `{name}` must start with $ or %")));
                }
                let id = reader.expr(body)?;
                reader.bind(&name, id)?;
            }
            (Some("output"), [name, body]) => {
                let name = reader.atom_text(name, "an output name")?.to_string();
                let id = reader.expr(body)?;
                if reader.b.tensor_type(id).is_none() {
                    return Err(reader.err(format!("output `{name}` is an attribute, not a tensor")));
                }
                outputs.push(Port { name, id });
            }
            (Some(head @ ("input" | "weight" | "let" | "output")), _) => {
                return Err(reader.err(format!("wrong number of parts in ({head} …); see the format in the docs")))
            }
            _ => return Err(reader.err("expected (input …), (weight …), (let …) or (output …)")),
        }
    }
    if outputs.is_empty() {
        return Err(Error::Syntax { file: file.into(), line: 1, reason: "the graph has no (output …)".into() });
    }
    let graph = Graph { expr: reader.b.expr, inputs, outputs, weights };
    Ok(graph.canonicalize())
}

struct Reader<'a> {
    file: &'a str,
    base_dir: Option<&'a Path>,
    b: GraphBuilder,
    env: HashMap<String, Id>,
    line: usize,
}

impl Reader<'_> {
    fn err(&self, reason: impl Into<String>) -> Error {
        self.err_at(self.line, reason.into())
    }

    fn err_at(&self, line: usize, reason: String) -> Error {
        Error::Syntax { file: self.file.into(), line, reason }
    }

    fn atom_text<'s>(&self, s: &'s Sexp, what: &str) -> Result<&'s str> {
        atom(s).ok_or_else(|| self.err(format!("expected {what}, found a list")))
    }

    fn bind(&mut self, name: &str, id: Id) -> Result<()> {
        if self.env.insert(name.to_string(), id).is_some() {
            return Err(self.err(format!("`{name}` is defined twice")));
        }
        Ok(())
    }

    /// Reads the `%name dtype shape` of an input or weight.
    fn declaration(&self, name: &Sexp, dtype: &Sexp, shape: &Sexp) -> Result<(String, TensorType)> {
        let name = self.atom_text(name, "a %name")?;
        let name = name
            .strip_prefix('%')
            .filter(|n| is_valid_name(n))
            .ok_or_else(|| self.err(format!("`{name}` is not a name like %x")))?;
        let dtype: DType = self.atom_text(dtype, "a dtype")?.parse().map_err(|e: String| self.err(e))?;
        let shape: crate::IntList = self.atom_text(shape, "a shape")?.parse().map_err(|e: String| self.err(e))?;
        let shape = shape.to_usizes().ok_or_else(|| self.err("a shape cannot have negative dimensions"))?;
        Ok((name.to_string(), TensorType::new(dtype, shape)))
    }

    /// Reads `(values v…)` or `(file "path" offset)` into a tensor of type `ty`.
    fn weight_data(&self, ty: &TensorType, data: &Sexp) -> Result<Tensor> {
        let items = match data {
            Sexp::List(items) if !items.is_empty() => items,
            _ => return Err(self.err("weight data must be (values …) or (file \"path\" offset)")),
        };
        match atom(&items[0]) {
            Some("values") => {
                let texts: Vec<&str> =
                    items[1..].iter().map(|s| self.atom_text(s, "a number")).collect::<Result<_>>()?;
                if texts.len() != ty.numel() {
                    return Err(self.err(format!("{ty} needs {} values, found {}", ty.numel(), texts.len())));
                }
                parse_values(ty, &texts).map_err(|e| self.err(e))
            }
            Some("file") if items.len() == 3 => {
                let rel = self.atom_text(&items[1], "a file name")?;
                let offset: u64 = self
                    .atom_text(&items[2], "a byte offset")?
                    .parse()
                    .map_err(|_| self.err("the byte offset must be a non-negative integer"))?;
                let dir = self.base_dir.ok_or_else(|| self.err("side files need the graph to be read from a file"))?;
                let path = dir.join(rel);
                let bytes = read_range(&path, offset, ty.numel() * ty.dtype.byte_size())
                    .map_err(|e| self.err(format!("{}: {e}", path.display())))?;
                crate::onnx::tensor_from_le_bytes(ty, &bytes).map_err(|e| self.err(e))
            }
            _ => Err(self.err("weight data must be (values …) or (file \"path\" offset)")),
        }
    }

    /// Adds the expression `s` to the graph and returns its id.
    fn expr(&mut self, s: &Sexp) -> Result<Id> {
        match s {
            Sexp::String(text) if text.starts_with('%') || text.starts_with('$') => self
                .env
                .get(text.as_str())
                .copied()
                .ok_or_else(|| self.err(format!("`{text}` is not defined before this line"))),
            Sexp::String(text) => {
                let leaf = TensorLang::from_op(text, vec![])
                    .map_err(|_| self.err(format!("`{text}` is not an integer, float, [list], dtype or op")))?;
                if !leaf.is_attribute() {
                    return Err(self.err(format!("op `{text}` needs operands")));
                }
                Ok(self.b.add(leaf).expect("leaves are well-formed"))
            }
            Sexp::List(items) => {
                let Some((head, rest)) = items.split_first() else {
                    return Err(self.err("empty expression ()"));
                };
                let op = self.atom_text(head, "an op name")?;
                if matches!(op, "input" | "weight") {
                    return Err(
                        self.err(format!("declare {op}s with a top-level ({op} …) form and refer to them by %name"))
                    );
                }
                let children = rest.iter().map(|c| self.expr(c)).collect::<Result<Vec<_>>>()?;
                let node = TensorLang::from_op(op, children.clone()).map_err(|_| {
                    self.err(format!(
                        "unknown op `{op}` with {} operands (see `TensorLang` for the op list)",
                        children.len()
                    ))
                })?;
                self.b.add(node).map_err(|reason| self.err(format!("({op} …): {reason}")))
            }
            Sexp::Empty => Err(self.err("empty expression")),
        }
    }
}

fn atom(s: &Sexp) -> Option<&str> {
    match s {
        Sexp::String(t) => Some(t),
        _ => None,
    }
}

fn parse_values(ty: &TensorType, texts: &[&str]) -> std::result::Result<Tensor, String> {
    let shape = IxDyn(&ty.shape);
    let bad = |t: &str| format!("`{t}` is not a valid {} value", ty.dtype);
    Ok(match ty.dtype {
        DType::F32 => {
            let v = texts
                .iter()
                .map(|t| {
                    t.parse::<Float>()
                        .map(Float::get)
                        .or_else(|_| t.parse::<i64>().map(|i| i as f32))
                        .map_err(|_| bad(t))
                })
                .collect::<std::result::Result<Vec<f32>, _>>()?;
            Tensor::F32(ArrayD::from_shape_vec(shape, v).expect("count checked"))
        }
        DType::I64 => {
            let v = texts
                .iter()
                .map(|t| t.parse::<i64>().map_err(|_| bad(t)))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Tensor::I64(ArrayD::from_shape_vec(shape, v).expect("count checked"))
        }
        DType::Bool => {
            let v = texts
                .iter()
                .map(|t| match *t {
                    "0" | "false" => Ok(false),
                    "1" | "true" => Ok(true),
                    _ => Err(bad(t)),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Tensor::Bool(ArrayD::from_shape_vec(shape, v).expect("count checked"))
        }
        d if d.is_float() => {
            let v = texts
                .iter()
                .map(|t| t.parse::<f64>().map_err(|_| bad(t)))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Tensor::F64(ArrayD::from_shape_vec(shape, v).expect("count checked")).cast(d)
        }
        d => {
            // an integer outside the type's range is an error, not a wrapped value
            let v = texts
                .iter()
                .map(|t| {
                    let v = t.parse::<i64>().map_err(|_| bad(t))?;
                    let back = Tensor::I64(ndarray::arr0(v).into_dyn()).cast(d).to_i64_vec()[0];
                    if back == v {
                        Ok(v)
                    } else {
                        Err(format!("{v} is out of range for {d}"))
                    }
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Tensor::I64(ArrayD::from_shape_vec(shape, v).expect("count checked")).cast(d)
        }
    })
}

fn read_range(path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf)
        .map_err(|e| std::io::Error::new(e.kind(), format!("needs {len} bytes at offset {offset}: {e}")))?;
    Ok(buf)
}

/// Splits text into top-level forms with the line each starts on, dropping `;` comments
/// (outside strings). Also used by the rule-file parser.
pub fn split_forms(text: &str) -> std::result::Result<Vec<(usize, String)>, (usize, String)> {
    let mut forms = Vec::new();
    let (mut depth, mut line, mut start_line) = (0usize, 1usize, 1usize);
    let (mut in_string, mut in_comment) = (false, false);
    let mut current = String::new();
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            in_comment = false;
        }
        if in_comment {
            continue;
        }
        match c {
            '"' => in_string = !in_string,
            ';' if !in_string => {
                in_comment = true;
                continue;
            }
            '(' if !in_string => {
                if depth == 0 {
                    start_line = line;
                    current.clear();
                }
                depth += 1;
            }
            ')' if !in_string => {
                if depth == 0 {
                    return Err((line, "unbalanced `)`".into()));
                }
                depth -= 1;
                if depth == 0 {
                    current.push(c);
                    forms.push((start_line, std::mem::take(&mut current)));
                    continue;
                }
            }
            c if depth == 0 && !c.is_whitespace() => {
                return Err((line, format!("unexpected `{c}` outside a form")));
            }
            _ => {}
        }
        if depth > 0 {
            current.push(if c == '\n' { ' ' } else { c });
        }
    }
    if depth > 0 {
        return Err((start_line, "this form is not closed (missing `)`)".into()));
    }
    Ok(forms)
}

/// Writes `graph` to `path`; weights too large to inline go to a side file with the
/// same stem and extension `.weights`.
pub fn write_file(graph: &Graph, path: &Path) -> Result<()> {
    let side_name =
        path.with_extension("weights").file_name().map(PathBuf::from).unwrap_or_else(|| "graph.weights".into());
    let mut side = Vec::new();
    let text = render(graph, &mut |t: &Tensor| {
        let offset = side.len();
        side.extend(crate::onnx::tensor_to_le_bytes(t));
        format!("(file {:?} {offset})", side_name.display().to_string())
    });
    let write = |p: &Path, bytes: &[u8]| {
        std::fs::write(p, bytes).map_err(|source| Error::Io { action: "write", path: p.into(), source })
    };
    if !side.is_empty() {
        write(&path.with_extension("weights"), &side)?;
    }
    write(path, text.as_bytes())
}

/// The graph as text with every weight inline (for small graphs and tests).
pub fn to_string_inline(graph: &Graph) -> String {
    render(graph, &mut |t: &Tensor| values_form(t))
}

fn values_form(t: &Tensor) -> String {
    let mut s = String::from("(values");
    match t {
        Tensor::F32(a) => a.iter().for_each(|v| write!(s, " {}", Float::new(*v)).unwrap()),
        Tensor::I64(a) => a.iter().for_each(|v| write!(s, " {v}").unwrap()),
        Tensor::Bool(a) => a.iter().for_each(|v| write!(s, " {}", *v as u8).unwrap()),
        Tensor::F16(a) => a.iter().for_each(|v| write!(s, " {}", f32::from(*v)).unwrap()),
        Tensor::F64(a) => a.iter().for_each(|v| write!(s, " {v:?}").unwrap()),
        other => other.to_i64_vec().iter().for_each(|v| write!(s, " {v}").unwrap()),
    }
    s.push(')');
    s
}

/// Renders the canonical form of `graph`; `big_weight` writes the data of weights that
/// are not inlined and returns the form that refers to it.
fn render(graph: &Graph, big_weight: &mut dyn FnMut(&Tensor) -> String) -> String {
    let g = graph.canonicalize();
    // declarations (inputs, weights) first, then the program, then the outputs
    let mut out = String::new();
    let mut body = String::new();
    writeln!(out, "{HEADER}").unwrap();
    // how each node is referred to: leaves and fills inline, everything else by name
    let mut refs: Vec<String> = Vec::with_capacity(g.expr.len());
    let mut next_let = 1;
    let model_name = |id: Id| g.inputs.iter().find(|p| p.id == id).map(|p| p.name.as_str());
    for (id, node) in g.expr.items() {
        let text = match node {
            TensorLang::Input([name, dtype, shape]) => {
                let name = g.name_of(*name);
                write!(out, "(input %{name} {} {}", g.expr[*dtype], g.expr[*shape]).unwrap();
                match model_name(id) {
                    Some(m) if m != name => writeln!(out, " {:?})", sanitize_quoted(m)).unwrap(),
                    _ => writeln!(out, ")").unwrap(),
                }
                format!("%{name}")
            }
            TensorLang::Weight([name, dtype, shape]) => {
                let name = g.name_of(*name);
                let data = &g.weights[name];
                let inline = data.len() <= INLINE_LIMIT && !data.as_f32().is_some_and(|a| a.iter().any(|v| v.is_nan()));
                let form = if inline { values_form(data) } else { big_weight(data) };
                writeln!(out, "(weight %{name} {} {} {form})", g.expr[*dtype], g.expr[*shape]).unwrap();
                format!("%{name}")
            }
            n if n.is_attribute() => n.to_string(),
            n => {
                let mut call = format!("({n}");
                for c in n.children() {
                    write!(call, " {}", refs[usize::from(*c)]).unwrap();
                }
                call.push(')');
                if matches!(n, TensorLang::Fill(_)) {
                    call
                } else {
                    writeln!(body, "(let ${next_let} {call})").unwrap();
                    next_let += 1;
                    format!("${}", next_let - 1)
                }
            }
        };
        refs.push(text);
    }
    out.push_str(&body);
    for port in &g.outputs {
        writeln!(out, "(output {:?} {})", sanitize_quoted(&port.name), refs[usize::from(port.id)]).unwrap();
    }
    out
}

/// Output and input names are written as quoted strings, which cannot hold `"`.
fn sanitize_quoted(name: &str) -> String {
    name.replace('"', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "(saturate-graph 1)
; a two-layer perceptron
(input %x f32 [2,3])
(weight %w f32 [3,2] (values 1.0 -2.0 0.5 0.25 3.0 -0.0))
(let %h (relu (matmul %x %w)))
(let $2 (add %h (fill 1.0 [2])))
(output \"y\" $2)
(output \"h\" %h)
";

    #[test]
    fn text_round_trip_is_exact() {
        let g = parse(SMALL, "small.sexp", None).unwrap();
        let text = to_string_inline(&g);
        let g2 = parse(&text, "again.sexp", None).unwrap();
        assert_eq!(g, g2);
        assert_eq!(text, to_string_inline(&g2));
        assert_eq!(g.outputs.len(), 2);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let bad = SMALL.replace("(relu (matmul %x %w))", "(relu (matmul %w %w))");
        let err = parse(&bad, "bad.sexp", None).unwrap_err().to_string();
        assert!(err.starts_with("bad.sexp:5:"), "{err}");
        assert!(err.contains("inner dimensions"), "{err}");

        let undefined = SMALL.replace("(add %h", "(add %nope");
        let err = parse(&undefined, "u.sexp", None).unwrap_err().to_string();
        assert!(err.starts_with("u.sexp:6:") && err.contains("%nope"), "{err}");

        let unclosed = SMALL.replace("(output \"h\" %h)", "(output \"h\" %h");
        let err = parse(&unclosed, "c.sexp", None).unwrap_err().to_string();
        assert!(err.contains("c.sexp:8:") && err.contains("not closed"), "{err}");

        let err = parse("(input %x f32 [1])", "h.sexp", None).unwrap_err().to_string();
        assert!(err.contains("starts with (saturate-graph 1)"), "{err}");
    }

    #[test]
    fn big_weights_go_to_a_side_file() {
        let dir = std::env::temp_dir().join(format!("saturate-sexp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let values: Vec<String> = (0..100).map(|i| format!("{}.5", i)).collect();
        let text = format!(
            "(saturate-graph 1)\n(input %x f32 [100])\n(weight %w f32 [100] (values {}))\n(output \"y\" (mul %x %w))\n",
            values.join(" ")
        );
        let g = parse(&text, "t", None).unwrap();
        let path = dir.join("g.sexp");
        write_file(&g, &path).unwrap();
        assert!(dir.join("g.weights").exists());
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.contains("(file \"g.weights\" 0)"), "{written}");
        assert_eq!(read_file(&path).unwrap(), g);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
