//! Opening a GGUF file: header, metadata and tensor table, checked before anything is loaded.
//!
//! [`GgufFile::open`] reads the header with candle's parser and then checks what that parser
//! leaves to later: that every tensor's bytes lie inside the file (a truncated download fails here
//! with a clear message instead of deep inside loading) and that the architecture is one
//! [`crate::transformer`] runs. It does not read tensor data; [`GgufFile::tensor`] does, one
//! tensor at a time.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_core::quantized::QTensor;
use candle_core::quantized::gguf_file::{Content, Value};

use crate::ModelError;
use crate::transformer::SUPPORTED_ARCHITECTURES;

/// An open GGUF file whose header has been read and checked.
pub struct GgufFile {
    path: PathBuf,
    reader: BufReader<File>,
    content: Content,
}

impl GgufFile {
    /// Opens `path` and checks its header, its tensor table and its architecture.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let shown = path.display().to_string();
        let corrupt = |detail: String| ModelError::Corrupt { path: shown.clone(), detail };
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::Missing { path: shown.clone(), hint: String::new() },
            _ => corrupt(format!("cannot open: {e}")),
        })?;
        let size = file.metadata().map_err(|e| corrupt(e.to_string()))?.len();
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader).map_err(|e| corrupt(format!("bad header: {e}")))?;
        for (name, info) in &content.tensor_infos {
            let elements = info.shape.elem_count();
            let block = info.ggml_dtype.block_size();
            if !elements.is_multiple_of(block) {
                return Err(corrupt(format!("tensor {name} has {elements} elements, not a multiple of {block}")));
            }
            let bytes = (elements / block) as u64 * info.ggml_dtype.type_size() as u64;
            let end = content.tensor_data_offset.saturating_add(info.offset).saturating_add(bytes);
            if end > size {
                return Err(corrupt(format!(
                    "truncated: tensor {name} ends at byte {end} but the file has {size} bytes (download it again)"
                )));
            }
        }
        let gguf = Self { path: path.to_path_buf(), reader, content };
        let architecture = gguf.architecture()?;
        if !SUPPORTED_ARCHITECTURES.contains(&architecture.as_str()) {
            return Err(ModelError::UnsupportedArchitecture { path: shown, architecture });
        }
        Ok(gguf)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<String, ModelError> {
        self.string("general.architecture")
    }

    /// `general.name`, when present.
    pub fn name(&self) -> Option<String> {
        self.string("general.name").ok()
    }

    /// The parsed header.
    pub fn content(&self) -> &Content {
        &self.content
    }

    /// All metadata.
    pub fn metadata(&self) -> &std::collections::HashMap<String, Value> {
        &self.content.metadata
    }

    /// A metadata value, or an error naming the missing key.
    pub fn value(&self, key: &str) -> Result<&Value, ModelError> {
        self.content.metadata.get(key).ok_or_else(|| self.corrupt(format!("metadata key `{key}` is missing")))
    }

    /// A string metadata value.
    pub fn string(&self, key: &str) -> Result<String, ModelError> {
        let value = self.value(key)?;
        value.to_string().cloned().map_err(|_| self.corrupt(format!("metadata `{key}` is not a string")))
    }

    /// An integer metadata value, whatever its integer width.
    pub fn usize(&self, key: &str) -> Result<usize, ModelError> {
        as_u64(self.value(key)?).map(|v| v as usize).ok_or_else(|| self.corrupt(format!("`{key}` is not an integer")))
    }

    /// A float metadata value.
    pub fn f32(&self, key: &str) -> Result<f32, ModelError> {
        match self.value(key)? {
            Value::F32(v) => Ok(*v),
            Value::F64(v) => Ok(*v as f32),
            other => as_u64(other).map(|v| v as f32).ok_or_else(|| self.corrupt(format!("`{key}` is not a number"))),
        }
    }

    /// Whether the file holds a tensor of that name.
    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// The dimensions of a tensor (outermost first), when the file holds it.
    pub fn tensor_shape(&self, name: &str) -> Option<Vec<usize>> {
        self.content.tensor_infos.get(name).map(|info| info.shape.dims().to_vec())
    }

    /// Reads one tensor.
    pub fn tensor(&mut self, name: &str) -> Result<QTensor, ModelError> {
        if !self.has_tensor(name) {
            return Err(self.corrupt(format!("tensor `{name}` is missing")));
        }
        self.content
            .tensor(&mut self.reader, name, &Device::Cpu)
            .map_err(|e| self.corrupt(format!("cannot read tensor `{name}`: {e}")))
    }

    /// A [`ModelError::Corrupt`] about this file.
    pub fn corrupt(&self, detail: String) -> ModelError {
        ModelError::Corrupt { path: self.path.display().to_string(), detail }
    }
}

/// Any integer GGUF value as `u64` (negative values are rejected).
pub fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::U8(v) => Some(u64::from(*v)),
        Value::U16(v) => Some(u64::from(*v)),
        Value::U32(v) => Some(u64::from(*v)),
        Value::U64(v) => Some(*v),
        Value::I8(v) => u64::try_from(*v).ok(),
        Value::I16(v) => u64::try_from(*v).ok(),
        Value::I32(v) => u64::try_from(*v).ok(),
        Value::I64(v) => u64::try_from(*v).ok(),
        _ => None,
    }
}
