//! The classifier's class names and their sentence embeddings.

use serde::Deserialize;

use crate::engine::LoadError;
use crate::engine::pack::Pack;

/// The `labels` section of a label-grounded pack.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelsSpec {
    /// Class names, in the order of the image encoder's logits.
    pub names: Vec<String>,
    /// The file of `names.len() x dim` little-endian f32 embeddings.
    pub embeddings: String,
    /// The prompts the embeddings were made from (informational).
    #[serde(default)]
    pub prompts: Vec<String>,
}

/// Class names with one unit-length embedding each.
#[derive(Debug)]
pub struct Labels {
    names: Vec<String>,
    dim: usize,
    /// Row-major `names.len() x dim`.
    matrix: Vec<f32>,
}

impl Labels {
    /// Loads the embeddings file named by `spec` and checks its size and norms.
    pub fn load(pack: &Pack, spec: LabelsSpec, dim: usize) -> Result<Labels, LoadError> {
        let path = pack.named_file(&spec.embeddings)?;
        if spec.names.is_empty() {
            return Err(LoadError::invalid(
                pack.manifest_path(),
                "labels.names is empty",
            ));
        }
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Io {
            path: path.clone(),
            source,
        })?;
        let expected = spec.names.len() * dim * 4;
        if bytes.len() != expected {
            return Err(LoadError::invalid(
                &path,
                format!(
                    "{} bytes, expected {} labels x {dim} f32 = {expected}",
                    bytes.len(),
                    spec.names.len()
                ),
            ));
        }
        let matrix: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        for (k, row) in matrix.chunks_exact(dim).enumerate() {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            if !norm.is_finite() || (norm - 1.0).abs() > 1e-3 {
                return Err(LoadError::invalid(
                    &path,
                    format!("row {k} ({:?}) has norm {norm}, expected 1", spec.names[k]),
                ));
            }
        }
        Ok(Labels {
            names: spec.names,
            dim,
            matrix,
        })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn name(&self, k: usize) -> &str {
        &self.names[k]
    }

    pub fn embedding(&self, k: usize) -> &[f32] {
        &self.matrix[k * self.dim..(k + 1) * self.dim]
    }

    /// Cosine similarity of a unit vector with every label.
    pub fn similarities(&self, v: &[f32]) -> Vec<f32> {
        self.matrix
            .chunks_exact(self.dim)
            .map(|row| dot(row, v))
            .collect()
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Indices of the `k` largest values, largest first.
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    let k = k.min(values.len());
    if k == 0 {
        return Vec::new();
    }
    idx.select_nth_unstable_by(k - 1, |&a, &b| values[b].total_cmp(&values[a]));
    idx.truncate(k);
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_largest_first() {
        assert_eq!(top_k(&[0.1, 0.9, 0.5, 0.7], 3), vec![1, 3, 2]);
        assert_eq!(top_k(&[0.1], 5), vec![0]);
        assert!(top_k(&[], 2).is_empty());
    }
}
