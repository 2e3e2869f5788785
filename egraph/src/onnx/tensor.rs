//! ONNX `TensorProto` ⇄ [`Tensor`]: initializers, `Constant` values and the `.pb`
//! files that carry model inputs and outputs.
//!
//! Data may sit in `raw_data` (little-endian bytes), in a typed field (`float_data`,
//! `double_data`, `int64_data`, `uint64_data` for u32, `int32_data` for the narrower
//! integers, booleans and f16 bit patterns), or in an external file named relative to
//! the model. Every length is checked against the declared shape.

use super::proto::TensorProto;
use crate::dtype::onnx_type_name;
use crate::{f16, DType, Error, Result, Tensor, TensorType};
use ndarray::{ArrayD, IxDyn};
use prost::Message;
use std::path::Path;

/// Decodes a tensor; `base_dir` is where external data files are looked up.
pub fn tensor_from_proto(t: &TensorProto, base_dir: Option<&Path>) -> Result<Tensor> {
    let name = t.name.clone().unwrap_or_default();
    let bad = |reason: String| Error::BadTensor { name: name.clone(), reason };
    let code = t.data_type.unwrap_or(0);
    let dtype = DType::from_onnx_code(code)
        .ok_or_else(|| Error::UnsupportedType { tensor: name.clone(), dtype: onnx_type_name(code).into() })?;
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("negative dimension {d}"))))
        .collect::<Result<Vec<usize>>>()?;
    if shape
        .iter()
        .try_fold(dtype.byte_size(), |n, &d| n.checked_mul(d))
        .is_none_or(|bytes| bytes > isize::MAX as usize)
    {
        return Err(bad(format!("dimensions {:?} are too large", t.dims)));
    }
    let ty = TensorType::new(dtype, shape);
    let numel = ty.numel();
    if t.segment.is_some() {
        return Err(bad("segmented tensors are not supported".into()));
    }
    if t.data_location == Some(1) {
        let bytes = read_external(t, base_dir, numel * dtype.byte_size()).map_err(&bad)?;
        return tensor_from_le_bytes(&ty, &bytes).map_err(bad);
    }
    if let Some(raw) = &t.raw_data {
        if raw.len() != numel * dtype.byte_size() {
            return Err(Error::RawDataLength {
                name,
                ty: ty.to_string(),
                expected: numel * dtype.byte_size(),
                got: raw.len(),
            });
        }
        return tensor_from_le_bytes(&ty, raw).map_err(bad);
    }
    let count_error = |got: usize, field: &str| bad(format!("{field} holds {got} values, but {ty} needs {numel}"));
    // the typed field each type's values sit in when they are not raw bytes
    let (field, values): (&str, Vec<f64>) = match dtype {
        DType::F32 => ("float_data", t.float_data.iter().map(|&v| v as f64).collect()),
        DType::F64 => ("double_data", t.double_data.clone()),
        DType::I64 => ("int64_data", t.int64_data.iter().map(|&v| v as f64).collect()),
        DType::U32 => ("uint64_data", t.uint64_data.iter().map(|&v| v as f64).collect()),
        // f16 values are their bit patterns, widened to int32
        DType::F16 => ("int32_data", t.int32_data.iter().map(|&v| f16::from_bits(v as u16).to_f64()).collect()),
        _ => ("int32_data", t.int32_data.iter().map(|&v| v as f64).collect()),
    };
    if values.len() != numel {
        return Err(count_error(values.len(), field));
    }
    if dtype == DType::I64 {
        // i64 beyond 2⁵³ does not survive f64
        let v = t.int64_data.clone();
        return Ok(Tensor::I64(ArrayD::from_shape_vec(IxDyn(&ty.shape), v).expect("count checked")));
    }
    // every other type's values are exact in f64
    Ok(Tensor::F64(ArrayD::from_shape_vec(IxDyn(&ty.shape), values).expect("count checked")).cast(dtype))
}

/// Encodes a tensor with its data in `raw_data`.
pub fn tensor_to_proto(t: &Tensor, name: &str) -> TensorProto {
    TensorProto {
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: Some(t.dtype().onnx_code()),
        name: Some(name.to_string()),
        raw_data: Some(tensor_to_le_bytes(t)),
        ..Default::default()
    }
}

/// Reads a `TensorProto` file (`input_0.pb`, …).
pub fn read_tensor_file(path: &Path) -> Result<(Option<String>, Tensor)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { action: "read", path: path.into(), source })?;
    let proto = TensorProto::decode(bytes.as_slice())
        .map_err(|e| Error::Decode { path: path.into(), reason: format!("not a TensorProto: {e}") })?;
    if proto.dims.is_empty() && proto.data_type.is_none() && proto.raw_data.is_none() {
        return Err(Error::Decode { path: path.into(), reason: "empty TensorProto (no type, no data)".into() });
    }
    let tensor = tensor_from_proto(&proto, path.parent()).map_err(|e| match e {
        Error::BadTensor { reason, .. } => Error::Decode { path: path.into(), reason },
        other => other,
    })?;
    Ok((proto.name.filter(|n| !n.is_empty()), tensor))
}

/// Writes a tensor as a `TensorProto` file.
pub fn write_tensor_file(path: &Path, tensor: &Tensor, name: &str) -> Result<()> {
    let bytes = tensor_to_proto(tensor, name).encode_to_vec();
    std::fs::write(path, bytes).map_err(|source| Error::Io { action: "write", path: path.into(), source })
}

/// Decodes little-endian element data of type `ty`.
pub fn tensor_from_le_bytes(ty: &TensorType, bytes: &[u8]) -> std::result::Result<Tensor, String> {
    Tensor::from_le_bytes(ty, bytes)
}

/// Encodes element data as little-endian bytes, in row-major order.
pub fn tensor_to_le_bytes(t: &Tensor) -> Vec<u8> {
    t.to_le_bytes()
}

fn read_external(t: &TensorProto, base_dir: Option<&Path>, len: usize) -> std::result::Result<Vec<u8>, String> {
    let entry =
        |key: &str| t.external_data.iter().find(|e| e.key.as_deref() == Some(key)).and_then(|e| e.value.clone());
    let location = entry("location").ok_or("external data without a `location`")?;
    let rel = Path::new(&location);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(format!("external data location `{location}` must stay inside the model's folder"));
    }
    let base = base_dir.ok_or("external data needs the model to be loaded from a file")?;
    let offset: u64 = match entry("offset") {
        Some(o) => o.parse().map_err(|_| format!("bad external data offset `{o}`"))?,
        None => 0,
    };
    if let Some(l) = entry("length") {
        let l: usize = l.parse().map_err(|_| format!("bad external data length `{l}`"))?;
        if l != len {
            return Err(format!("external data length {l} does not match the {len} bytes the shape needs"));
        }
    }
    let path = base.join(rel);
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(&path).map_err(|e| format!("cannot open external data {}: {e}", path.display()))?;
    f.seek(SeekFrom::Start(offset)).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf)
        .map_err(|_| format!("external data {} is shorter than offset {offset} + {len} bytes", path.display()))?;
    Ok(buf)
}
