//! Static shapes: the [`TensorType`] of a value, the integer-list attribute leaf
//! [`IntList`], and the broadcasting rule shared by every elementwise op.

use crate::DType;
use std::fmt;
use std::str::FromStr;

/// Element type and static shape of a tensor value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl TensorType {
    pub fn new(dtype: DType, shape: Vec<usize>) -> Self {
        TensorType { dtype, shape }
    }

    pub fn f32(shape: Vec<usize>) -> Self {
        TensorType::new(DType::F32, shape)
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, ShapeDisplay(&self.shape))
    }
}

/// Displays a shape as `[1,3,224,224]`, the spelling used in S-expressions and errors.
pub struct ShapeDisplay<'a>(pub &'a [usize]);

impl fmt::Display for ShapeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_list(f, self.0)
    }
}

/// Writes `[a,b,c]`: no spaces, so a list is one S-expression atom.
fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    f.write_str("[")?;
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{v}")?;
    }
    f.write_str("]")
}

/// Inserts the first of `base`, `base_2`, `base_3`, … that `taken` lacks, and returns it.
pub fn unique_name(taken: &mut std::collections::HashSet<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 1;
    while !taken.insert(name.clone()) {
        n += 1;
        name = format!("{base}_{n}");
    }
    name
}

/// The shape two operands broadcast to under numpy/ONNX multidirectional broadcasting,
/// or `None` if they are incompatible.
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        // align trailing dimensions; missing leading dimensions act as 1
        let offset = rank - s.len();
        if i < offset {
            1
        } else {
            s[i - offset]
        }
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// The shape left after reducing `axes` of `shape`: reduced axes become 1 with `keep`,
/// and disappear without.
pub fn reduced_shape(shape: &[usize], axes: &[usize], keep: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keep) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// Normalizes a possibly negative axis against `rank`: `-1` is the last axis.
pub fn normalize_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

/// A list of integers, the attribute leaf for shapes, axes, permutations, pads and
/// strides. Written `[0,2,1,3]` (no spaces), so one list is one S-expression atom.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct IntList(pub Vec<i64>);

impl IntList {
    pub fn from_usizes(values: &[usize]) -> Self {
        IntList(values.iter().map(|&v| v as i64).collect())
    }

    /// The values as non-negative sizes, or `None` if any is negative.
    pub fn to_usizes(&self) -> Option<Vec<usize>> {
        self.0.iter().map(|&v| usize::try_from(v).ok()).collect()
    }
}

impl fmt::Display for IntList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_list(f, &self.0)
    }
}

impl FromStr for IntList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let inner = s
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .ok_or_else(|| format!("`{s}` is not an integer list like [1,2,3]"))?;
        if inner.is_empty() {
            return Ok(IntList(Vec::new()));
        }
        inner
            .split(',')
            .map(|v| v.parse::<i64>().map_err(|_| format!("`{v}` in `{s}` is not an integer")))
            .collect::<Result<_, _>>()
            .map(IntList)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast(&[2, 3], &[3]), Some(vec![2, 3]));
        assert_eq!(broadcast(&[2, 1, 4], &[3, 1]), Some(vec![2, 3, 4]));
        assert_eq!(broadcast(&[], &[5]), Some(vec![5]));
        assert_eq!(broadcast(&[0, 1], &[1, 7]), Some(vec![0, 7]));
        assert_eq!(broadcast(&[2, 3], &[4]), None);
    }

    #[test]
    fn int_lists_round_trip() {
        for text in ["[]", "[5]", "[0,-2,1,3]"] {
            let list: IntList = text.parse().unwrap();
            assert_eq!(list.to_string(), text);
        }
        assert!("[1, 2]".parse::<IntList>().is_err());
        assert!("1,2".parse::<IntList>().is_err());
        assert!("[a]".parse::<IntList>().is_err());
    }
}
